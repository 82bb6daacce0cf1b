"""Many models on one emulator: a classifier and a regressor share the state machine, the trigger, the serve
function and the API; each trains to its own champion, and one model's bad batch leaves the other alone."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from mlops.local.emulator import LocalCloud
from mlops.tools.platform import Platform, PlatformError
from mlops.tools.samples import bundled, corrupt
from tests.conftest import quick_config_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_given_two_models_when_both_upload_in_one_second_then_both_train_concurrently_and_serve_on_their_routes(
    tmp_path,
):
    # One candidate each: this is about two models side by side, not their tuning. The regressor's statistics
    # are forced past one function (#29): a Distributed Map over three shards of its snapshot, then the merge.
    one_ridge = {"candidates": [{"family": "linear", "params": {"alpha": [1.0]}}]}
    sharded = {"prefix": "diabetes/", "format": "auto", "scope": "object", "shards": 3}
    models = [
        quick_config_file(tmp_path),
        quick_config_file(tmp_path, "diabetes", training=one_ridge, data=sharded),
    ]
    with LocalCloud(models, port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint)
        assert p.models() == ["breast-cancer", "diabetes"]
        with pytest.raises(PlatformError, match="2 models"):
            p.for_model(None)  # a command about one model needs --model here
        bc, db = p.for_model("breast-cancer"), p.for_model("diabetes")
        cancer, diabetes = bundled("breast-cancer"), bundled("diabetes")

        # Both uploads within one second: one run per model, side by side (locks are per model).
        t0 = time.monotonic()
        up_bc = bc.upload(cancer.to_csv(index=False).encode(), "breast-cancer/day1.csv")
        up_db = db.upload(diabetes.to_csv(index=False).encode(), "diabetes/day1.csv")
        assert time.monotonic() - t0 < 1.0
        run_bc = bc.run_for_upload(up_bc["key"], up_bc["etag"])
        run_db = db.run_for_upload(up_db["key"], up_db["etag"])
        first_bc, first_db = bc.wait(run_bc, timeout=600), db.wait(run_db, timeout=600)
        assert first_bc["status"] == "SUCCEEDED", first_bc.get("error")
        assert first_db["status"] == "SUCCEEDED", first_db.get("error")
        assert _t(first_bc["started_at"]) < _t(first_db["finished_at"])  # concurrently, not one behind the other
        assert _t(first_db["started_at"]) < _t(first_bc["finished_at"])
        assert (first_bc["model"], first_db["model"]) == ("breast-cancer", "diabetes")
        assert bc.champion() == 1 and db.champion() == 1
        assert db.version(1)["metric"] == "rmse" and bc.version(1)["metric"] == "roc_auc"
        _assert_statistics_sharded(db, run_db, shards=3, rows=len(diabetes))
        assert bc.stores.meta.get_run("breast-cancer", run_bc)["steps"]["analyze"]["outputs"]["shards"] == 0

        # Predictions for both over HTTP, each on its own route and with its own record schema.
        status, body = p.api_request("GET", "/models")
        assert status == 200 and body["models"] == [
            {"model": "breast-cancer", "version": 1},
            {"model": "diabetes", "version": 1},
        ]
        rows_bc = cancer.drop(columns=["target"]).iloc[:3].to_dict("records")
        rows_db = diabetes.drop(columns=["target"]).iloc[:3].to_dict("records")
        answer_bc, answer_db = bc.predict(rows_bc), db.predict(rows_db)
        assert answer_bc["model"] == "breast-cancer" and answer_bc["predictions"][0]["probabilities"]
        assert answer_db["model"] == "diabetes" and isinstance(answer_db["predictions"][0]["prediction"], float)
        status, body = p.api_request("POST", "/models/diabetes/predict", {"records": rows_bc})
        assert status == 400 and "field" in body["message"]  # the other model's records do not fit this one
        status, body = p.api_request("POST", "/predict", {"records": rows_bc})
        assert status == 400 and "breast-cancer, diabetes" in body["message"]  # which one? the answer says how
        status, body = p.api_request("POST", "/models/nope/predict", {"records": rows_bc})
        assert status == 404 and "unknown model 'nope'" in body["message"]
        status, doc = p.api_request("GET", "/openapi.json")
        schemas = doc["components"]["schemas"]
        assert "bmi" in json.dumps(schemas["PredictRequest-diabetes"]) and "bmi" not in json.dumps(
            schemas["PredictRequest-breast-cancer"]
        )
        status, health = p.api_request("GET", "/health")
        assert status == 200 and health["models"] == {"breast-cancer": 1, "diabetes": 1}

        # A bad batch for the regressor fails its run, naming the problem; the classifier is untouched.
        runs_before = [r["run_id"] for r in bc.runs()]
        bad = corrupt(diabetes, "drop", "bmi").to_csv(index=False).encode()
        up_bad = db.upload(bad, "diabetes/day2.csv")
        failed = db.wait(db.run_for_upload(up_bad["key"], up_bad["etag"]), timeout=600)
        assert failed["status"] == "FAILED", failed.get("status")
        assert "bmi" in json.dumps(failed.get("anomalies") or failed.get("error")), failed
        assert db.champion() == 1 and bc.champion() == 1
        assert [r["run_id"] for r in bc.runs()] == runs_before
        assert bc.predict(rows_bc)["model_version"] == 1


def _assert_statistics_sharded(platform: Platform, run_id: str, *, shards: int, rows: int) -> None:
    """The run's statistics came from ``shards`` children of the Distributed Map: a partial each, the Map Run's
    results written by its ResultWriter (one SUCCEEDED record per child), and the merge's artifact over every row."""
    from mlops.core.artifact_io import get_json

    store, model = platform.stores.artifacts, platform.model
    analyzed = platform.stores.meta.get_run(model, run_id)["steps"]["analyze"]
    assert analyzed["status"] == "SUCCEEDED" and analyzed["outputs"]["shards"] == shards
    assert analyzed["outputs"]["rows"] == rows
    assert len(store.keys(f"runs/{run_id}/extract/shards/")) == shards
    assert len(store.keys(f"runs/{run_id}/analyze/partials/")) == shards
    (manifest_key,) = [k for k in store.keys(f"runs/{run_id}/analyze/map/") if k.endswith("manifest.json")]
    manifest = get_json(store, manifest_key)
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    assert not manifest["ResultFiles"]["FAILED"]
    assert len(get_json(store, succeeded["Key"])) == shards
    stats = get_json(store, analyzed["outputs"]["statistics"])
    assert stats["num_rows"] == rows and all(f["count"] == rows for f in stats["features"].values())
