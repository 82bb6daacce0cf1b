"""`mlops component check` and mlops.testing: a good component passes every rule; a component that is not
deterministic, one that cannot be converted and one whose ONNX computes something else are each refused, naming the
rule and the fix."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from mlops.testing import assert_component_ok, check_component
from mlops.tools.samples import STARTER

pytestmark = pytest.mark.unit

SAMPLE = STARTER / "data" / "seattle-weather.csv"

PARAMS = {"num": "precipitation", "den": "wind", "name": "rain_per_wind"}


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(SAMPLE)


def test_given_the_starter_components_then_every_rule_passes(starter_components, sample):
    ratio = assert_component_ok("components.features:Ratio", sample, params=PARAMS)
    assert [f.rule for f in ratio.findings] == [
        "scikit-learn conventions",
        "declares its columns",
        "fits and transforms",
        "missing values",
        "pickles",
        "deterministic",
        "converts to ONNX",
        "ONNX parity",
        "single-row latency",
    ]
    parts = assert_component_ok("components.features:TimestampParts", sample, params={"column": "date"})
    assert parts.ok and "opset 20" in next(f.detail for f in parts.findings if f.rule == "converts to ONNX")


@pytest.mark.parametrize(
    ("component", "rule", "says"),
    [
        ("tests.bad_components:Noisy", "deterministic", "is not deterministic: its column 'rain_per_wind' differs"),
        ("tests.bad_components:Product", "ONNX parity", "'rain_per_wind' differs on"),
        (
            "tests.bad_components:Unservable",
            "converts to ONNX",
            "tests.bad_components:Unservable: Unservable has no ONNX form",
        ),
    ],
)
def test_given_a_bad_component_then_the_check_names_its_rule_and_the_fix(
    starter_components, sample, component, rule, says
):
    report = check_component(component, sample, params=PARAMS)
    assert not report.ok
    failed = {f.rule: f for f in report.findings if not f.passed}
    assert rule in failed and says in failed[rule].detail, str(report)
    assert failed[rule].fix
    with pytest.raises(AssertionError, match=rule):
        assert_component_ok(component, sample, params=PARAMS)


def test_given_a_component_that_breaks_scikit_learns_rules_then_the_check_says_which(
    starter_components, sample, tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "eager.py").write_text(
        textwrap.dedent(
            """
            from components.features import Ratio


            class Eager(Ratio):
                def __init__(self, num="a", den="b", name="r"):
                    super().__init__(num, den, name)
                    self.computed_ = 1
            """
        )
    )
    report = check_component("eager:Eager", sample, params=PARAMS)
    (first,) = [f for f in report.findings if f.rule == "scikit-learn conventions"]
    assert not first.passed and "check_no_attributes_set_in_init" in first.detail


def test_given_the_cli_then_it_prints_each_rule_and_exits_by_the_verdict(starter_components, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mlops.tools.cli import app

    monkeypatch.chdir(tmp_path)
    ok = CliRunner().invoke(
        app,
        ["component", "check", "components.features:Ratio", "--data", str(SAMPLE)]
        + [f"-p{k}={v}" for k, v in PARAMS.items()],
    )
    assert ok.exit_code == 0 and "✓ ONNX parity" in ok.output, ok.output
    bad = CliRunner().invoke(
        app,
        [
            "component",
            "check",
            "tests.bad_components:Product",
            "--data",
            str(SAMPLE),
            "--params",
            str(PARAMS).replace("'", '"'),
        ],
    )
    assert bad.exit_code == 1 and "✗ ONNX parity" in bad.output and "fix: make onnx() compute" in bad.output
