"""A new user's first hour: bad first batches of every kind, each named; nothing lost; the emulator lives."""

from __future__ import annotations

import random

import numpy as np
import pytest

from mlops.local.emulator import LocalCloud
from mlops.tools.platform import Platform
from mlops.tools.samples import bundled
from tests.conftest import quick_config_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BASE = bundled("breast-cancer")


def _mixed_jsonl() -> bytes:
    frame = BASE.copy()
    frame["mean_texture"] = frame["mean_texture"].astype(object)
    frame.loc[frame.index % 7 == 0, "mean_texture"] = "heavy"
    return frame.to_json(orient="records", lines=True).encode()


BAD_FIRST_BATCHES = {
    "single-class.csv": (BASE.assign(target=1), ("SINGLE_CLASS", "target")),
    "no-target.csv": (BASE.drop(columns=["target"]), ("MISSING_COLUMN", "target")),
    "all-nan.csv": (BASE.assign(mean_radius=np.nan), ("ALL_MISSING", "mean_radius")),
    "mixed.jsonl": (_mixed_jsonl(), ("WRONG_DTYPE", "mean_texture")),
    "semicolon.csv": (BASE.to_csv(index=False, sep=";").encode(), ("WRONG_DELIMITER", "")),
    "garbage.csv": (random.Random(0).randbytes(4096), ("UNPARSEABLE_FILE", "")),
}


def _body(data: object) -> bytes:
    return data if isinstance(data, bytes) else data.to_csv(index=False).encode()  # type: ignore[attr-defined]


def _upload_and_wait(p: Platform, name: str, body: bytes) -> dict:
    up = p.upload(body, f"breast-cancer/{name}")
    return p.wait(p.run_for_upload(up["key"], up["etag"]), timeout=300)


def test_given_bad_first_batches_then_each_run_names_its_problem_and_a_good_batch_becomes_champion(tmp_path):
    with LocalCloud(quick_config_file(tmp_path), port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint)
        for name, (data, (code, column)) in BAD_FIRST_BATCHES.items():
            run = _upload_and_wait(p, name, _body(data))
            assert run["status"] == "FAILED", (name, run.get("error"))
            assert (code, column) in {(a["code"], a["column"]) for a in run["anomalies"]}, (name, run["anomalies"])
            assert run["quarantined"] == [f"breast-cancer/{name}"], name
            assert p.champion() is None
            status, health = p.api_request("GET", "/health")  # the emulator is alive and still serving
            assert status == 200 and health["status"] == "no_model"
        assert p.stores.meta.latest_schema("breast-cancer") is None  # no failed run became the reference

        good = _upload_and_wait(p, "good.csv", _body(BASE))
        assert good["status"] == "SUCCEEDED" and p.champion() == 1
        assert p.stores.meta.latest_schema("breast-cancer")["run_id"] == good["run_id"]

        # a prefix run (on demand, as a schedule would) skips every rejected file, naming each
        weekly = p.wait(p.request_run(reason="weekly")["run_id"], timeout=300)
        assert weekly["status"] in ("SUCCEEDED", "REJECTED"), weekly.get("error")
        assert {s["key"] for s in weekly["skipped"]} == {f"breast-cancer/{n}" for n in BAD_FIRST_BATCHES}
        assert [o["key"] for o in weekly["objects"]] == ["breast-cancer/good.csv"]


def test_given_a_native_crash_and_a_trial_out_of_memory_then_only_those_invocations_fail(tmp_path):
    from mlops.local import seams

    two_trials = {"candidates": [{"family": "logistic_regression", "params": {"C": [0.1, 1.0]}}], "max_concurrency": 2}
    with LocalCloud(quick_config_file(tmp_path, training=two_trials), port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint)
        seams.inject_fault("evaluate", "abort", times=1)  # onnxruntime's failed assertion, in evaluate's process
        crashed = _upload_and_wait(p, "a.csv", _body(BASE))
        assert crashed["status"] == "FAILED"
        assert crashed["error"]["type"] == "Runtime.ExitError", crashed["error"]
        assert "signal: aborted" in crashed["error"]["message"]
        assert crashed["steps"]["export"]["status"] == "SUCCEEDED" and "evaluate" not in crashed["steps"]
        status, _ = p.api_request("GET", "/health")
        assert status == 200  # the emulator lives

        seams.inject_fault("run_trial", "oom", times=1)  # one trial dies of memory in its own Lambda
        run = _upload_and_wait(p, "b.csv", _body(BASE.sample(frac=1.0, random_state=2)))
        assert run["status"] == "SUCCEEDED", run.get("error")
        died = [t for t in run["trials"].values() if t.get("status") == "FAILED"]
        assert len(died) == 1 and "Runtime.OutOfMemory" in died[0]["error"]
        assert p.champion() == 1


def _cli(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from mlops.tools.cli import app

    result = CliRunner().invoke(app, list(args))
    try:
        text = result.stdout + result.stderr
    except ValueError:  # older click: stderr mixed into output
        text = result.output
    return result.exit_code, text


def test_given_the_cli_and_a_burst_of_five_uploads_then_reasons_are_immediate_and_every_object_is_trained_on(
    tmp_path,
):
    import time

    with LocalCloud(quick_config_file(tmp_path), port=0) as cloud:
        endpoint = ["--endpoint", cloud.endpoint]
        code, text = _cli("runs", "list", *endpoint)
        assert code == 0 and "no runs yet" in text and "fresh account" in text
        code, text = _cli("local", "env")
        assert code == 0 and f"export AWS_ENDPOINT_URL={cloud.endpoint}" in text and "AWS_ACCESS_KEY_ID" in text
        notes = tmp_path / "notes.txt"
        notes.write_bytes(_body(BASE))
        t0 = time.monotonic()
        code, text = _cli("run", "--data", str(notes), *endpoint)
        assert code == 1 and "would start no run: its suffix is not one of data.suffixes" in text
        good = tmp_path / "good.csv"
        good.write_bytes(_body(BASE))
        code, text = _cli("run", "--data", str(good), "--key", "other/good.csv", *endpoint)
        assert code == 1 and "outside the model's data prefix 'breast-cancer/'" in text
        assert time.monotonic() - t0 < 20  # at once, not after a 60 s wait for a run that never comes
        code, text = _cli("models", "served-at", "yesterday", *endpoint)
        assert code == 1 and "not an ISO-8601 time" in text

        # five uploads within milliseconds: the first runs, the other four wait and run together — none dropped
        p = Platform.connect("dev", cloud.endpoint)
        s3, bucket = p.client("s3"), p.output("LandingBucket")
        keys = [f"breast-cancer/burst-{i}.csv" for i in range(5)]
        for i, key in enumerate(keys):
            s3.put_object(Bucket=bucket, Key=key, Body=_body(BASE.sample(frac=0.9, random_state=i)))
        deadline = time.monotonic() + 600
        while True:
            runs = p.runs(50)
            trained = {o["key"] for r in runs for o in r.get("objects") or []}
            if trained >= set(keys) and all(r["status"] in ("SUCCEEDED", "REJECTED", "FAILED") for r in runs):
                break
            assert time.monotonic() < deadline, [(r["run_id"], r["status"]) for r in runs]
            time.sleep(1)
        assert len(runs) == 2, [r["trigger"] for r in runs]
        first, coalesced = sorted(runs, key=lambda r: r["run_id"])
        assert coalesced["trigger"]["reason"] == "coalesced"
        assert sorted(coalesced["trigger"]["keys"]) == sorted(set(keys) - {first["trigger"]["key"]})
        code, text = _cli("runs", "show", coalesced["run_id"], *endpoint)
        assert code == 0 and "data: 4 object(s)" in text


def _dollars(frame):
    """Rows of one file say "107$" in a numeric column (the Carseats upload that broke prefix runs)."""
    out = frame.copy()
    out["mean_radius"] = out["mean_radius"].astype(object)
    out.loc[out.index[:40], "mean_radius"] = "107$"
    return out


def _upload_and_wait_started(p: Platform, key: str, body: bytes) -> str:
    up = p.upload(body, key)
    return p.run_for_upload(up["key"], up["etag"])


def test_given_good_and_bad_files_coalesced_then_each_bad_file_is_named_and_quarantined_and_every_good_one_trained(
    tmp_path,
):
    import time

    good = {f"breast-cancer/good-{i}.csv": _body(BASE.sample(frac=0.9, random_state=i)) for i in range(7)}
    unreadable_or_broken = {
        "breast-cancer/semicolon.csv": (BASE.to_csv(index=False, sep=";").encode(), "WRONG_DELIMITER"),
        "breast-cancer/garbage.csv": (random.Random(1).randbytes(4096), "UNPARSEABLE_FILE"),
        "breast-cancer/dollars.csv": (_body(_dollars(BASE)), "WRONG_DTYPE"),
    }
    spike = "breast-cancer/no-texture.csv"  # readable, but a column's values are gone: a failing rate of the batch
    with LocalCloud(quick_config_file(tmp_path), port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint)
        first = _upload_and_wait_started(p, "breast-cancer/first.csv", _body(BASE))  # holds the lock
        s3, bucket = p.client("s3"), p.output("LandingBucket")
        bodies = {**good, **{k: body for k, (body, _) in unreadable_or_broken.items()}}
        bodies[spike] = _body(BASE.assign(mean_texture=np.nan))
        for key, body in bodies.items():  # within a second, behind the first run
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        assert p.wait(first, timeout=600)["status"] == "SUCCEEDED"

        # WHEN the coalesced run reads the eleven: THEN it sets aside the three unusable ones, each named with its
        # own problem, and fails on the batch's missing rate, naming the one file that carries it
        coalesced = p.wait(p.run_for_upload(spike, s3.head_object(Bucket=bucket, Key=spike)["ETag"]), timeout=600)
        assert coalesced["trigger"]["reason"] == "coalesced" and sorted(coalesced["trigger"]["keys"]) == sorted(bodies)
        assert {o["key"]: o["codes"] for o in coalesced.get("set_aside", [])} == {
            k: [code] for k, (_, code) in unreadable_or_broken.items()
        }
        assert coalesced["status"] == "FAILED", coalesced.get("error")
        (rate,) = [a for a in coalesced["anomalies"] if a["severity"] == "error"]
        assert (rate["code"], rate["column"], rate["objects"]) == ("MISSING_RATE_SPIKE", "mean_texture", [spike])
        assert sorted(coalesced["quarantined"]) == sorted([*unreadable_or_broken, spike])

        # AND the run goes on without them: a retry trains on the seven good files
        deadline = time.monotonic() + 600
        while not (retries := [r for r in p.runs(50) if (r.get("trigger") or {}).get("retry_of")]):
            assert time.monotonic() < deadline, "no retry started"
            time.sleep(1)
        retry = p.wait(retries[0]["run_id"], timeout=600)
        assert retry["trigger"]["reason"] == "retry" and retry["trigger"]["retry_of"] == coalesced["run_id"]
        assert sorted(o["key"] for o in retry["objects"]) == sorted(good)
        assert retry["status"] in ("SUCCEEDED", "REJECTED"), retry.get("error")
        assert retry["steps"]["validate_data"]["status"] == "SUCCEEDED"

        # AND a prefix run skips every quarantined file, naming each, and goes on
        weekly = p.wait(p.request_run(reason="weekly")["run_id"], timeout=600)
        assert weekly["status"] in ("SUCCEEDED", "REJECTED"), weekly.get("error")
        assert {s["key"] for s in weekly["skipped"]} == {*unreadable_or_broken, spike}
        assert sorted(o["key"] for o in weekly["objects"]) == sorted(["breast-cancer/first.csv", *good])
        code, text = _cli("runs", "show", coalesced["run_id"], "--endpoint", cloud.endpoint)
        assert code == 0 and "set aside breast-cancer/semicolon.csv" in text and f"(in {spike})" in text
