"""End to end, offline: files uploaded under a model's scoring prefix → the trigger → the scoring state machine (the
Distributed Map the CDK app synthesizes, run by the emulator) → scored Parquet, a manifest and _SUCCESS.

The champion is trained in-process by the pipeline's steps against the emulator's stores (the subject here is
scoring, not training: the lifecycle tests run training through the state machine)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mlops.core.clock import new_run_id
from mlops.core.config import load_config
from mlops.core.context import StepContext
from mlops.core.runs import start_run
from mlops.local.emulator import LocalCloud
from mlops.tools.cli import app
from mlops.tools.platform import Platform
from mlops.tools.samples import bundled
from tests.chain import run_chain
from tests.conftest import quick_config_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DATA = bundled("breast-cancer").sample(frac=1.0, random_state=5).reset_index(drop=True)
FEATURES = DATA.drop(columns=["target"])


def test_given_three_files_and_a_success_marker_under_the_scoring_prefix_then_every_row_is_scored_as_predict_does(
    tmp_path: Path,
):
    # Small shards: a file above 20 kB (the JSON Lines one) is scored as row ranges of it.
    config_file = quick_config_file(tmp_path, scoring={"shard_bytes": 20_000, "max_error_share": 0.05})
    with LocalCloud(config_file, port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint)
        config = load_config(config_file)
        # Outside the model's data prefix: no training run starts in the emulator beside this one.
        up = p.upload(DATA.iloc[:400].to_csv(index=False).encode(), "elsewhere/train.csv")
        ctx = StepContext(run_id=new_run_id(), config=config, stores=p.stores)
        start_run(p.stores, config, ctx.run_id, {"reason": "test"})
        assert run_chain(ctx, {"bucket": up["bucket"], "keys": [up["key"]]})["status"] == "SUCCEEDED"
        assert p.champion() == 1

        scored = DATA.iloc[400:560].reset_index(drop=True)  # with its label column: carried through
        a = scored.iloc[:80].astype({"mean_radius": object}).copy()
        a.loc[5, "mean_radius"] = "big"
        a.loc[61, "mean_radius"] = "?"
        parquet = io.BytesIO()
        scored.iloc[80:130].to_parquet(parquet, index=False)
        files = {
            "exports/day/a.csv": a.to_csv(index=False).encode(),
            "exports/day/b.parquet": parquet.getvalue(),
            "exports/day/c.jsonl": scored.iloc[130:].to_json(orient="records", lines=True).encode(),
        }
        for key, body in files.items():
            p.upload(body, key)
        # What `mlops score s3://…/exports/day/` does: the folder's tables copied under the scoring prefix, then its
        # _SUCCESS marker, whose upload starts the job.
        marker = p.score(f"s3://{p.output('LandingBucket')}/exports/day/")
        assert marker["key"] == "score/breast-cancer/day/_SUCCESS"

        job = p.wait_job(p.job_for_upload(marker["key"], marker["etag"]), timeout=300)

        assert job["status"] == "SUCCEEDED", job.get("reason")
        assert (job["version"], job["rows_in"], job["rows_out"], job["errors"]) == (1, 160, 160, 2)
        s3, bucket = p.client("s3"), p.output("ArtifactBucket")
        folder = f"scored/breast-cancer/{job['job_id']}/"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=folder)["Contents"]]
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=folder + "_manifest.json")["Body"].read())
        parts = sorted(k for k in keys if k.rsplit("/", 1)[-1].startswith("part-"))
        assert folder + "_SUCCESS" in keys
        assert len(parts) == len(manifest["parts"]) > 3  # at least one file scored as row ranges
        assert all(p_["rows_in"] == p_["rows_out"] for p_ in manifest["parts"])
        out = pd.concat(
            [pd.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in parts],
            ignore_index=True,
        )
        assert len(out) == 160 and set(out["model_version"]) == {1}
        # Bad rows are marked, with /predict's message, not dropped.
        bad = out[out["status"] == "error"]
        assert len(bad) == 2 and bad["error"].str.contains("field 'mean_radius': expected a number, got str").all()
        # A sample of the good rows: what /predict answers for the same records.
        good = out[out["status"] == "ok"].sample(20, random_state=1)
        answer = p.predict(good[FEATURES.columns].apply(pd.to_numeric).to_dict("records"))  # a.csv's column is text
        assert [a_["prediction"] for a_ in answer["predictions"]] == good["prediction"].tolist()
        for (_, row), a_ in zip(good.iterrows(), answer["predictions"], strict=True):
            assert row["probability_1"] == pytest.approx(a_["probabilities"]["1"], abs=1e-6)
        # Scored rows are captured for the monitor, as served ones are (capture_sample 1.0: every scored row).
        captured = [
            o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket, Prefix="captures/breast-cancer/")["Contents"]
            if job["job_id"] in o["Key"]
        ]
        rows = sum(len(s3.get_object(Bucket=bucket, Key=k)["Body"].read().splitlines()) for k in captured)
        assert rows == 158
        # The job is listed with its figures (`mlops jobs`).
        listed = CliRunner().invoke(app, ["jobs", "--endpoint", cloud.endpoint, "--json"])
        assert listed.exit_code == 0, listed.output
        (mine,) = [j for j in json.loads(listed.output) if j["job_id"] == job["job_id"]]
        assert (mine["status"], mine["rows_out"], mine["errors"], mine["version"]) == ("SUCCEEDED", 160, 2, 1)
