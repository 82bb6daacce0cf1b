"""Capture overhead (D1): the warm single-row serve path with capture at 100 % against capture off.

Run: ``python -m benchmarks.capture``. One process, one model, interleaved rounds (off, on, off, on, …) so
drift in the machine's speed lands on both sides; stdout is an OS pipe read by another process, as the
Lambda runtime reads a function's output. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks import offline_aws
from benchmarks.serving import percentile, serving_champion, train


def _pipe_stdout() -> tuple[int, subprocess.Popen[bytes]]:
    """fd 1 becomes a pipe read by another process, as the Lambda runtime reads a function's output (a
    reader thread in this process would compete for the GIL and charge the handler for it)."""
    reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert reader.stdin is not None
    saved = os.dup(1)
    os.dup2(reader.stdin.fileno(), 1)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the process's own stdout, now the pipe
    return saved, reader


def main(rounds: int = 40, per_round: int = 250) -> None:
    from mlops.local.apigw import rest_event
    from mlops.local.lambda_runtime import LocalContext
    from mlops.serving import api
    from mlops.tools.samples import example_config_path

    offline_aws()
    _, _, X, onnx_bytes = train("gradient_boosting")
    raw = yaml.safe_load(example_config_path().read_text())
    configs = {}
    tmp = Path(tempfile.mkdtemp())
    for label, rate in (("off", 0.0), ("on", 1.0)):
        raw.setdefault("monitoring", {})["capture_sample"] = rate
        configs[label] = tmp / f"{label}.yaml"
        configs[label].write_text(yaml.safe_dump(raw))
    saved, reader = _pipe_stdout()
    with serving_champion(onnx_bytes):
        context = LocalContext("serve")
        event = rest_event("POST", "/predict", json.dumps({"records": X.head(1).to_dict("records")}))
        samples: dict[str, list[float]] = {"off": [], "on": []}
        for label in ("off", "on"):  # warm both configs
            os.environ["MLOPS_CONFIG_URI"] = str(configs[label])
            api.capture_sample.cache_clear()  # a config change is a new execution environment in Lambda
            for _ in range(200):
                assert api.handle(event, context)["statusCode"] == 200
        for _ in range(rounds):
            for label in ("off", "on"):
                os.environ["MLOPS_CONFIG_URI"] = str(configs[label])
                api.capture_sample.cache_clear()
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    api.handle(event, context)
                    samples[label].append((time.perf_counter() - t0) * 1000)
    sys.stdout.flush()
    os.dup2(saved, 1)
    sys.stdout = sys.__stdout__
    assert reader.stdin is not None
    reader.stdin.close()
    reader.wait()
    off, on = (statistics.median(samples[k]) for k in ("off", "on"))
    print("## Capture overhead: warm single-row POST /predict (gradient boosting, ms)\n")
    print("| capture | median | p99 | samples |")
    print("|---|---:|---:|---:|")
    for label in ("off", "on"):
        s = samples[label]
        share = "100 %" if label == "on" else "0 %"
        print(f"| {label} ({share}) | {statistics.median(s):.3f} | {percentile(s, 99):.3f} | {len(s):,} |")
    print(f"\nDifference of medians: {on - off:+.3f} ms (on ÷ off = {on / off:.3f}); budget: < 0.2 ms.")


if __name__ == "__main__":
    main()
