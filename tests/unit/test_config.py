"""The project config: the shipped example loads; invalid files name the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.core.config import ConfigError, Task, load_config, parse_config
from mlops.tools.samples import example_config_path

pytestmark = pytest.mark.unit


def _example() -> dict:
    return yaml.safe_load(example_config_path().read_text())


def test_given_the_example_config_when_loaded_then_fields_are_typed() -> None:
    cfg = load_config(example_config_path())
    assert cfg.name == "breast-cancer"
    assert cfg.task is Task.BINARY
    assert cfg.primary_metric_for(Task.BINARY) == "roc_auc"
    assert len(cfg.config_hash()) == 64


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("target"), "target: required field is missing"),
        (lambda d: d["split"].update(test=0.5), "split: train + validation + test must sum to 1.0"),
        (lambda d: d.update(colour="blue"), "colour: unknown field"),
        (lambda d: d["evaluation"].update(primary_metric="auc"), "primary_metric 'auc' is unknown"),
        (lambda d: d["training"]["candidates"][0].update(family="xgboost"), "training.candidates.0.family"),
        (lambda d: d["data"].update(prefix="s3://bucket/x/"), "data.prefix"),
        (lambda d: d.update(name="Bad Name"), "name: String should match pattern"),
    ],
)
def test_given_an_invalid_config_when_loaded_then_the_error_names_the_field(mutate, expected) -> None:
    raw = _example()
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        parse_config(raw, "mlops.yaml")
    assert expected in str(err.value)
    assert "mlops.yaml" in str(err.value)


def test_given_a_metric_for_the_wrong_task_when_resolved_then_it_fails_with_the_choices() -> None:
    raw = _example()
    cfg = parse_config(raw)
    with pytest.raises(ConfigError, match="does not apply to a regression task"):
        cfg.primary_metric_for(Task.REGRESSION)


def test_given_a_missing_or_broken_file_when_loaded_then_the_error_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_given_a_scalar_where_a_list_of_values_belongs_then_the_error_is_the_field_and_the_fix() -> None:
    raw = yaml.safe_load(example_config_path().read_text())
    raw["training"]["candidates"][1]["params"]["n_estimators"] = 100
    with pytest.raises(ConfigError) as err:
        parse_config(raw, "mlops.yaml")
    message = str(err.value)
    assert "training.candidates.1.params.n_estimators: a hyperparameter takes a list of values" in message
    assert "[100]" in message and "list[any]" not in message and "function-after" not in message
    assert message.count("n_estimators") == 1  # one line per field, not one per union member


def test_given_runs_with_a_lower_is_better_metric_then_the_best_trial_shown_is_the_lowest(capsys) -> None:
    from mlops.tools.cli import show_run

    trials = {f"t{i}": {"family": "linear", "metric": "rmse", "value": v} for i, v in enumerate([65.28, 53.1, 58.0])}
    show_run({"run_id": "r", "status": "SUCCEEDED", "trials": trials}, steps=False)
    assert "best validation rmse 53.1000" in capsys.readouterr().out
