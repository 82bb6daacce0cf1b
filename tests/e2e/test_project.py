"""The path a user takes: `mlops init`, then the project's models and components through the platform's real state
machine in the emulator — a feature component (a ratio, a timestamp's parts) and a LightGBM candidate trained,
exported into one ONNX graph, served on raw records, and named with their source in the lineage."""

from __future__ import annotations

import hashlib
import io
import sys

import joblib
import numpy as np
import onnx
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mlops.core.project import Project
from mlops.local.emulator import LocalCloud
from mlops.ml.models import model_frame
from mlops.ml.prepared import load_dataset
from mlops.tools.cli import app
from mlops.tools.platform import Platform

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "weather-project"
    made = CliRunner().invoke(app, ["init", str(root)])
    assert made.exit_code == 0 and "./scripts/demo" in made.output, made.output
    model = root / "models" / "weather.yaml"
    spec = yaml.safe_load(model.read_text())
    spec["training"]["candidates"] = [{"family": "lightgbm", "params": {"n_estimators": [60], "num_leaves": [15]}}]
    model.write_text(yaml.safe_dump(spec))  # one candidate: the run's champion is LightGBM
    monkeypatch.syspath_prepend(str(root))  # the test unpickles the model: its components import, as in Lambda
    yield Project(root)
    for name in [m for m in sys.modules if m == "components" or m.startswith("components.")]:
        del sys.modules[name]


def test_given_a_project_made_by_mlops_init_then_its_components_and_lightgbm_train_and_serve_raw_records(project):
    sample = pd.read_csv(project.root / "data" / "seattle-weather.csv")
    assert (project.root / "app.py").read_text().count("MlopsApp") == 2  # the whole app: the platform's construct
    with LocalCloud(None, port=0, project=project) as cloud:
        p = Platform.connect("dev", cloud.endpoint).for_model("weather")
        up = p.upload((project.root / "data" / "seattle-weather.csv").read_bytes(), "weather/2012-2015.csv")
        run = p.wait(p.run_for_upload(up["key"], up["etag"]), timeout=900)
        assert run["status"] == "SUCCEEDED", run.get("error") or run.get("reasons")
        version = p.version(p.champion())
        assert version["family"] == "lightgbm"

        # the champion's graph holds the components' nodes (a ratio's division, a timestamp split and matched)
        graph = onnx.load_from_string(p.stores.artifacts.get_bytes(version["artifacts"]["onnx"]["uri"]))
        ops = {node.op_type for node in graph.graph.node}
        assert {"Div", "StringSplit", "RegexFullMatch", "TreeEnsembleClassifier"} <= ops, ops

        # /predict on raw records (a date as text, before the feature step) answers as the scikit-learn pipeline
        rows = sample.drop(columns=["weather"]).sample(40, random_state=7).to_dict("records")
        answer = p.predict(rows)
        pipe = joblib.load(io.BytesIO(p.stores.artifacts.get_bytes(version["artifacts"]["model"]["uri"])))
        ds = load_dataset(p.stores.artifacts, version["lineage"]["dataset"])
        X = model_frame(pd.DataFrame(rows), ds.kinds)
        assert [a["prediction"] for a in answer["predictions"]] == list(pipe.predict(X))
        got = np.array([[a["probabilities"][c] for c in ds.classes] for a in answer["predictions"]])
        assert np.abs(got - pipe.predict_proba(X)).max() < 1e-4

        # the lineage says which code made it: each component's path, parameters and source hash
        source = hashlib.sha256((project.root / "components" / "features.py").read_bytes()).hexdigest()
        made_by = {c["component"]: c for c in version["lineage"]["components"]}
        assert set(made_by) == {"components.features:Ratio", "components.features:TimestampParts"}
        assert {c["sha256"] for c in made_by.values()} == {source}
        assert made_by["components.features:TimestampParts"]["params"] == {"column": "date"}
