"""``mlops demo``: the lifecycle as a story a newcomer can follow, fully offline."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import typer

from mlops.config import ProjectConfig
from mlops.constants import CHAMPION
from mlops.context import Stores
from mlops.datasets import bundled, corrupt, degrade_labels
from mlops.report import lifecycle_html


def say(text: str = "", **style: Any) -> None:
    typer.secho(text, **style)


def headline(n: int, text: str) -> None:
    say(f"\n[{n}] {text}", bold=True, fg=typer.colors.CYAN)


def describe_run(stores: Stores, model: str, run_id: str) -> dict[str, Any]:
    run = stores.meta.get_run(model, run_id) or {}
    steps = run.get("steps", {})
    line = "  ".join(
        f"{name} {'✔' if s['status'] == 'SUCCEEDED' else '✘'} {s.get('duration_s', 0):.2f}s"
        for name, s in steps.items()
    )
    say(f"    run {run_id}: {run.get('status')}")
    say(f"    steps: {line}")
    for a in run.get("anomalies", [])[:6]:
        color = typer.colors.RED if a["severity"] == "error" else typer.colors.YELLOW
        say(f"    anomaly [{a['severity']}] {a['code']} {a['column']}: {a['description']}", fg=color)
    if run.get("metrics"):
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(run["metrics"].items()) if isinstance(v, float))
        say(f"    test metrics: {shown}")
    for reason in run.get("reasons", []):
        say(f"    not blessed: {reason}", fg=typer.colors.YELLOW)
    return run


def run_demo(config: ProjectConfig, out: Path) -> Path:
    """Train, break, retrain; write an HTML report and return its path."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(var, "offline")
    import boto3
    from moto import mock_aws

    from mlops.chain import run_chain
    from mlops.clock import new_run_id
    from mlops.context import StepContext
    from mlops.local.provision import create_resources
    from mlops.runs import start_run
    from mlops.runtime import make_stores

    t_start = time.perf_counter()
    with mock_aws():
        session = boto3.session.Session(region_name=os.environ["AWS_DEFAULT_REGION"])
        resources = create_resources(session)
        stores = make_stores(resources, session)
        s3 = session.client("s3")
        model = config.name
        headline(1, "Offline AWS is up (moto, in-process): landing and artifact buckets, three DynamoDB tables.")

        def upload_and_run(key: str, body: bytes, why: str) -> dict[str, Any]:
            s3.put_object(Bucket=resources.landing_bucket, Key=key, Body=body)
            say(f"    uploaded s3://{resources.landing_bucket}/{key} ({len(body):,} bytes) — {why}")
            run_id = new_run_id()
            start_run(stores, config, run_id, {"reason": "s3_upload", "key": key})
            run_chain(StepContext(run_id, config, stores), {"bucket": resources.landing_bucket, "keys": [key]})
            return describe_run(stores, model, run_id)

        data = bundled("breast-cancer").sample(frac=1.0, random_state=3).reset_index(drop=True)
        first = data.iloc[:400]
        headline(2, f"First data: 400 rows of scikit-learn's breast-cancer set ({data.shape[1] - 1} features).")
        upload_and_run(f"{config.data.prefix}batch-001.csv", first.to_csv(index=False).encode(), "the first batch")
        champion = stores.meta.get_alias(model, CHAMPION)
        say(f"    champion: v{champion}", fg=typer.colors.GREEN, bold=True)

        headline(3, "A broken batch: a column went missing and another turned to text upstream.")
        broken = corrupt(corrupt(first, "drop", "mean_radius"), "to_text", "worst_area", fraction=0.4)
        upload_and_run(f"{config.data.prefix}batch-002.csv", broken.to_csv(index=False).encode(), "corrupted")
        say(f"    champion still v{stores.meta.get_alias(model, CHAMPION)}", fg=typer.colors.GREEN)

        headline(4, "A batch with 45% of its labels scrambled: valid data, worse model.")
        noisy = degrade_labels(first, config.target, 0.45, seed=7)
        upload_and_run(f"{config.data.prefix}batch-003.csv", noisy.to_csv(index=False).encode(), "noisy labels")
        say(f"    champion still v{stores.meta.get_alias(model, CHAMPION)}", fg=typer.colors.GREEN)

        headline(5, f"A good new batch: the first rows plus {len(data) - 400} new ones ({len(data)} rows).")
        upload_and_run(f"{config.data.prefix}batch-004.csv", data.to_csv(index=False).encode(), "a clean batch")
        say(f"    champion: v{stores.meta.get_alias(model, CHAMPION)}", fg=typer.colors.GREEN, bold=True)

        out.mkdir(parents=True, exist_ok=True)
        runs = list(reversed(stores.meta.list_runs(model)))
        versions = stores.meta.list_model_versions(model)
        history = stores.meta.alias_history(model)
        links: dict[str, str] = {}
        for v in versions:
            name = f"evaluation-v{v['version']}.html"
            (out / name).write_bytes(stores.artifacts.get_bytes(v["artifacts"]["report"]["uri"]))
            links[v["run_id"]] = name
        report = out / "index.html"
        report.write_text(lifecycle_html(model, runs, versions, history, links))
        say(f"\nDone in {time.perf_counter() - t_start:.1f}s: {len(runs)} runs, {len(versions)} model version(s).")
    return report
