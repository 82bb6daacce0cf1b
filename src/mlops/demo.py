"""``mlops demo``: the lifecycle as a story a newcomer can follow — offline, through the real state machine.

It starts the emulator (the synthesized stacks on a local endpoint), uploads data to the landing bucket
and lets each upload trigger a run, exactly as in AWS: S3 → EventBridge → trigger → Step Functions →
one Lambda handler per step.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import typer

from mlops.config import ProjectConfig
from mlops.datasets import bundled, corrupt, degrade_labels
from mlops.report import lifecycle_html


def say(text: str = "", **style: Any) -> None:
    typer.secho(text, **style)


def headline(n: int, text: str) -> None:
    say(f"\n[{n}] {text}", bold=True, fg=typer.colors.CYAN)


def _await_version(p: Any, records: list[dict[str, Any]], old: int, timeout: float = 60) -> int:
    """Poll the API until it answers from a version other than ``old`` (the cache interval at most)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        version = int(p.predict(records)["model_version"])
        if version != old:
            return version
        time.sleep(0.5)
    return old


def run_demo(config: ProjectConfig, config_path: Path, out: Path) -> Path:
    """Train, break, retrain; write an HTML report and return its path."""
    from mlops.cli import _step_line, show_run
    from mlops.local.emulator import LocalCloud
    from mlops.platform import Platform

    t_start = time.perf_counter()
    say("Starting offline AWS (moto) from the CDK app's synthesized templates…")
    os.environ.setdefault("MLOPS_MODEL_CACHE_SECONDS", "2")  # the demo shows switches quickly
    with LocalCloud(config_path, port=0) as cloud:
        p = Platform.connect(cloud.env, cloud.endpoint)
        headline(1, f"Offline AWS is up at {cloud.endpoint} ({time.perf_counter() - t_start:.1f}s)")
        say(f"    landing bucket {p.output('LandingBucket')}, state machine {p.output('StateMachineArn')}")
        say(
            f"    {len([k for k in p.outputs if k.startswith('Function')]) + 1} Lambda functions served by the real "
            "handlers in functions/"
        )

        def upload_and_follow(name: str, body: bytes, why: str) -> dict[str, Any]:
            key = f"{config.data.prefix}{name}"
            up = p.upload(body, key)
            say(f"    uploaded s3://{up['bucket']}/{key} ({len(body):,} bytes) — {why}")
            run_id = p.run_for_upload(key, up["etag"])
            say(f"    S3 → EventBridge → trigger started run {run_id}")
            record = p.wait(run_id, on_step=_step_line)
            show_run(record, steps=False)
            return record

        data = bundled("breast-cancer").sample(frac=1.0, random_state=3).reset_index(drop=True)
        first = data.iloc[:400]
        headline(2, f"First data: 400 rows of scikit-learn's breast-cancer set ({data.shape[1] - 1} features)")
        upload_and_follow("batch-001.csv", first.to_csv(index=False).encode(), "the first batch")
        champion = p.champion()
        say(f"    champion: v{champion}", fg=typer.colors.GREEN, bold=True)

        headline(3, "A broken batch: a column went missing and another turned to text upstream")
        broken = corrupt(corrupt(first, "drop", "mean_radius"), "to_text", "worst_area", fraction=0.4)
        upload_and_follow("batch-002.csv", broken.to_csv(index=False).encode(), "corrupted")
        say(f"    the run stopped before training; champion still v{p.champion()}", fg=typer.colors.GREEN)

        headline(4, "A batch with 45% of its labels scrambled: the data is valid, the model is worse")
        noisy = degrade_labels(first, config.target, 0.45, seed=7)
        upload_and_follow("batch-003.csv", noisy.to_csv(index=False).encode(), "noisy labels")
        say(f"    not blessed; champion still v{p.champion()}", fg=typer.colors.GREEN)

        headline(5, f"A good new batch: the first rows plus {len(data) - 400} new ones")
        upload_and_follow("batch-004.csv", data.to_csv(index=False).encode(), "a clean, larger batch")
        say(f"    champion: v{p.champion()}", fg=typer.colors.GREEN, bold=True)

        headline(6, f"Serving the champion over HTTP: {p.output('ApiUrl')}/predict")
        sample = data.drop(columns=[config.target]).iloc[400:403].to_dict("records")
        answer = p.predict(sample)
        for row, pred in zip(data.iloc[400:403][config.target], answer["predictions"], strict=True):
            probs = ", ".join(f"{k}: {v:.3f}" for k, v in pred["probabilities"].items())
            say(f"    v{answer['model_version']} → {pred['prediction']} ({probs}); truth {row}")
        status, body = p.api_request("POST", "/predict", {"records": [{**sample[0], "mean_radius": "large"}]})
        say(f"    a bad record → HTTP {status}: {body['message']}", fg=typer.colors.YELLOW)

        headline(7, "Rollback in one call, effective within the cache interval (no redeploy)")
        before = p.predict(sample[:1])["model_version"]
        p.rollback(reason="demo: back to the previous champion", actor="demo")
        after = _await_version(p, sample[:1], before)
        say(f"    served v{before} → rollback → served v{after}", fg=typer.colors.GREEN)
        p.promote(before, reason="demo: forward again", actor="demo")
        again = _await_version(p, sample[:1], after)
        say(f"    promote v{before} → served v{again}", fg=typer.colors.GREEN)

        out.mkdir(parents=True, exist_ok=True)
        runs = list(reversed(p.runs(50)))
        versions, history = p.versions(), p.history()
        links: dict[str, str] = {}
        for v in versions:
            name = f"evaluation-v{v['version']}.html"
            (out / name).write_bytes(p.stores.artifacts.get_bytes(v["artifacts"]["report"]["uri"]))
            links[v["run_id"]] = name
        report = out / "index.html"
        report.write_text(lifecycle_html(p.model, runs, versions, history, links))
        say(
            f"\nDone in {time.perf_counter() - t_start:.1f}s: {len(runs)} runs through the state machine, "
            f"{len(versions)} model version(s), champion v{p.champion()}."
        )
    return report
