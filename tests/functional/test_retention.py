"""Day 181 and after: the artifact bucket's own lifecycle rules never take the registered models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlops.core.artifact_io import get_json
from mlops.core.constants import RUNS_PREFIX
from mlops.serving.service import ModelCache
from mlops.tools.samples import bundled
from tests.chain import run_chain
from tests.lifecycle import apply_lifecycle, synthesized_rules

pytestmark = [pytest.mark.functional, pytest.mark.slow]


def test_given_a_champion_when_the_lifecycle_rules_run_for_400_days_then_serving_and_the_next_run_still_work(
    account, breast_cancer_config
):
    cfg = breast_cancer_config
    data = bundled("breast-cancer")
    first = run_chain(account.context(cfg), account.upload("breast-cancer/v1.csv", data.to_csv(index=False).encode()))
    assert first["status"] == "SUCCEEDED"
    s3, bucket = account.session.client("s3"), account.resources.artifact_bucket

    rules = synthesized_rules()
    now = datetime.now(UTC)
    expired = apply_lifecycle(s3, bucket, rules, now + timedelta(days=181))
    expired += apply_lifecycle(s3, bucket, rules, now + timedelta(days=400))
    assert any(k.startswith(RUNS_PREFIX) for k in expired)  # run scratch does expire
    left = s3.list_object_versions(Bucket=bucket, Prefix=RUNS_PREFIX).get("Versions", [])
    assert left == []

    # THEN the serve function still loads the champion at its next cold start
    cache = ModelCache(account.stores.meta, account.stores.artifacts, cfg.name, ttl_seconds=0)
    assert cache.get().version == 1
    # AND the next run validates drift against the champion's data and re-scores the champion
    batch = data.sample(frac=1.0, random_state=5).to_csv(index=False).encode()
    second = run_chain(account.context(cfg), account.upload("breast-cancer/v2.csv", batch))
    assert second["validate_data"]["drift_checked"], second
    champion = get_json(account.stores.artifacts, second["evaluate"]["evaluation"]["uri"])["champion"]
    assert champion["version"] == 1 and champion["value"] is not None, champion
    assert second["status"] in ("SUCCEEDED", "REJECTED")


def test_given_a_pickle_changed_after_it_was_written_then_no_step_unpickles_it(
    account, breast_cancer_config, monkeypatch
):
    import joblib

    from mlops.core.ports import ArtifactIntegrityError, parse_s3_uri
    from mlops.steps.evaluate import evaluate
    from mlops.steps.export import export

    cfg = breast_cancer_config
    data = bundled("breast-cancer").to_csv(index=False).encode()
    out = run_chain(account.context(cfg), account.upload("breast-cancer/v1.csv", data))
    model_ref = out["train"]["model"]
    bucket, key = parse_s3_uri(model_ref["uri"])
    account.session.client("s3").put_object(Bucket=bucket, Key=key, Body=b"cos\nsystem\n(S'echo owned'\ntR.")
    unpickled = []
    monkeypatch.setattr(joblib, "load", lambda *a, **k: unpickled.append(a))
    ctx = account.context(cfg)
    for step in (export, evaluate):
        with pytest.raises(ArtifactIntegrityError, match="does not match the recorded"):
            step(ctx, dataset=out["prepare"]["dataset"], model=model_ref)
    assert unpickled == []
    assert account.stores.meta.get_run(cfg.name, ctx.run_id)["steps"]["export"]["error"]["type"] == (
        "ArtifactIntegrityError"
    )


def test_given_a_version_registered_before_retention_when_retained_then_it_survives_the_lifecycle(
    account, breast_cancer_config
):
    """The upgrade path (`mlops models retain`): a record still pointing into runs/ is moved out of it."""
    from mlops.core.registry import retain_version

    cfg = breast_cancer_config
    out = run_chain(
        account.context(cfg),
        account.upload("breast-cancer/v1.csv", bundled("breast-cancer").to_csv(index=False).encode()),
    )
    meta = account.stores.meta
    record = meta.get_model_version(cfg.name, 1)
    old = {
        sec: {
            n: (
                {"uri": r["run_uri"], "sha256": r["sha256"], "size": r["size"]}
                if isinstance(r, dict) and "run_uri" in r
                else r
            )
            for n, r in record[sec].items()
        }
        for sec in ("artifacts", "lineage")
    }
    meta.update_model_version(cfg.name, 1, old)  # as an older release registered it
    assert {"onnx", "model", "statistics", "snapshot", "dataset"} <= set(retain_version(account.stores, cfg.name, 1))
    assert retain_version(account.stores, cfg.name, 1) == []  # idempotent
    s3, bucket = account.session.client("s3"), account.resources.artifact_bucket
    now = datetime.now(UTC)
    apply_lifecycle(s3, bucket, synthesized_rules(), now + timedelta(days=400))
    apply_lifecycle(s3, bucket, synthesized_rules(), now + timedelta(days=800))
    assert ModelCache(meta, account.stores.artifacts, cfg.name, ttl_seconds=0).get().version == 1
    assert out["status"] == "SUCCEEDED"
