"""Components through a whole run (every step against moto): a good one serves; one that cannot be converted, one
that is not deterministic and one whose ONNX computes something else are each refused by the run, naming the
component and the rule, and the champion stays."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from mlops.core.artifact_io import get_json
from mlops.core.config import parse_config
from mlops.core.constants import CHAMPION
from mlops.tools.samples import STARTER
from tests.chain import run_chain

pytestmark = [pytest.mark.functional, pytest.mark.slow]

SAMPLE = STARTER / "data" / "seattle-weather.csv"


def weather(ratio: str = "components.features:Ratio"):
    return parse_config(
        {
            "name": "weather",
            "data": {"prefix": "weather/"},
            "target": "weather",
            "features": {
                "steps": [
                    {"component": ratio, "params": {"num": "precipitation", "den": "wind", "name": "rain_per_wind"}},
                    {
                        "component": "components.features:TimestampParts",
                        "params": {"column": "date"},
                        "drop_inputs": True,
                    },
                ],
                "overrides": {"date": {"compare": False}},
            },
            "training": {"candidates": [{"family": "logistic_regression", "params": {"C": [1.0]}}]},
            "evaluation": {"primary_metric": "accuracy"},
        }
    )


def test_given_components_then_the_run_serves_them_and_the_lineage_names_each_with_its_source(
    account, starter_components
):
    cfg = weather()
    out = run_chain(account.context(cfg), account.upload("weather/a.csv", SAMPLE.read_bytes()))
    assert out["status"] == "SUCCEEDED", out.get("error")
    blessing = get_json(account.stores.artifacts, out["validate_model"]["report"]["uri"])
    parity = {c["component"]: c for c in blessing["checks"] if c["name"] == "component_parity"}
    assert set(parity) == {"components.features:Ratio", "components.features:TimestampParts"}
    assert all(c["passed"] for c in parity.values())
    lineage = account.stores.meta.get_model_version("weather", 1)["lineage"]
    source = hashlib.sha256((STARTER / "components" / "features.py").read_bytes()).hexdigest()
    assert [(c["component"], c["sha256"]) for c in lineage["components"]] == [
        ("components.features:Ratio", source),
        ("components.features:TimestampParts", source),
    ]
    assert lineage["components"][0]["params"] == {"num": "precipitation", "den": "wind", "name": "rain_per_wind"}


@pytest.mark.parametrize(
    ("component", "step", "says"),
    [
        ("tests.bad_components:Unservable", "export", "tests.bad_components:Unservable: Unservable has no ONNX form"),
        ("tests.bad_components:Noisy", "train", "tests.bad_components:Noisy is not deterministic"),
        (
            "tests.bad_components:Product",
            "validate_model",
            "tests.bad_components:Product: its column 'rain_per_wind' differs",
        ),
    ],
)
def test_given_a_bad_component_then_the_run_refuses_it_naming_it_and_the_champion_stays(
    account, starter_components, component, step, says
):
    champion = run_chain(account.context(weather()), account.upload("weather/a.csv", SAMPLE.read_bytes()))
    assert champion["status"] == "SUCCEEDED"
    ctx = account.context(weather(component))
    sample = pd.read_csv(SAMPLE).sample(frac=0.9, random_state=1)
    out = run_chain(ctx, account.upload("weather/b.csv", sample.to_csv(index=False).encode()))
    run = account.stores.meta.get_run("weather", ctx.run_id)
    if step == "validate_model":
        assert out["status"] == "REJECTED"
        assert any(says in reason and "rule: ONNX parity" in reason for reason in run["reasons"]), run["reasons"]
    else:
        assert out["status"] == "FAILED"
        assert run["steps"][step]["status"] == "FAILED" and says in run["steps"][step]["error"]["message"]
    assert account.stores.meta.get_alias("weather", CHAMPION) == 1
