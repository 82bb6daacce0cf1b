"""Batch scoring's config: the scoring prefix a model's files to score land under, checked with the data prefixes."""

from __future__ import annotations

import pytest

from mlops.core.config import ConfigError, ModelSet, parse_config
from mlops.core.scoring import table_format
from mlops.steps.score import scoring_target

pytestmark = pytest.mark.unit

TRAINING = {"candidates": [{"family": "logistic_regression"}]}


def _model(name: str, prefix: str, **sections: object) -> object:
    return parse_config({"name": name, "data": {"prefix": prefix}, "target": "y", "training": TRAINING, **sections})


def test_given_no_scoring_prefix_then_it_is_score_slash_the_model_and_files_directly_under_it_are_jobs():
    config = _model("churn", "churn/")
    assert config.scoring_prefix == "score/churn/"
    assert scoring_target(config, "score/churn/today.csv") == "score/churn/today.csv"
    assert scoring_target(config, "score/churn/nightly/part-0.parquet") is None  # waits for its folder's marker
    assert scoring_target(config, "score/churn/nightly/_SUCCESS") == "score/churn/nightly/"
    assert scoring_target(config, "score/churn/notes.txt") is None
    assert [table_format(k) for k in ("a.CSV", "b.parquet", "c.jsonl", "d.json", "e.txt")] == [
        "csv",
        "parquet",
        "jsonl",
        "jsonl",
        None,
    ]


def test_given_a_scoring_prefix_that_is_not_a_folder_then_the_config_fails_naming_the_field():
    with pytest.raises(ConfigError, match=r"scoring\.prefix"):
        _model("churn", "churn/", scoring={"prefix": "s3://bucket/score/"})


def test_given_a_scoring_prefix_under_a_data_prefix_then_the_models_fail_naming_both():
    churn = _model("churn", "churn/", scoring={"prefix": "churn/score/"})
    with pytest.raises(
        ConfigError, match=r"scoring\.prefix: 'churn/score/' overlaps data\.prefix 'churn/' of model 'churn'"
    ):
        ModelSet([("churn.yaml", churn)])
    a, b = _model("a-model", "a/", scoring={"prefix": "score/"}), _model("b-model", "b/")
    with pytest.raises(ConfigError, match=r"overlaps scoring\.prefix 'score/b-model/'"):
        ModelSet([("a.yaml", a), ("b.yaml", b)])
