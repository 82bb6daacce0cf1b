"""Cold import of every Lambda handler as shipped, against its byte-compiled floor, under the runtime's Python.

For each function: a fresh ``python3.12 -I -B`` process with exactly what Lambda puts on ``sys.path`` (the
function's folder, its dependency layer, the mlops code layer and the runtime's boto3 stand-in) times
``import handler``. Three builds of each dependency layer are compared, in one run:

- **shipped**: the layer as deployed (byte code beside the sources where both fit, byte code instead of the
  sources where only that fits);
- **floor**: byte code beside every source whatever the size (what a cold import costs when nothing compiles;
  for the largest bundles not deployable, above 250 MB);
- **sources**: the floor without its byte code (what the largest bundles shipped before: every cold start compiles).

Lambda gives a function CPU in proportion to its memory (one vCPU at 1,769 MB), so the import measured here on a
full core is projected to each function's configured memory: ``import * max(1, 1769 / memory)``, against the
10 s init limit.

Run: ``python -m benchmarks.cold_start`` (x86_64 layers; about 5 minutes on first run, layers are cached).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from mlops.core import constants as c
from mlops.infra.functions import ALL_FUNCTIONS, ONE_VCPU_MB, PIPELINE_FUNCTIONS, FunctionSpec
from mlops.layers.build import ROOT, RUNTIME_STANDIN, Layer, build_code, build_dependencies, find_python

FULL_CPU_MB = ONE_VCPU_MB  # Lambda: one vCPU at this memory, a share of one below it
INIT_LIMIT_S = 10.0
RUNS = 3

IMPORT = """
import sys, time
sys.path[:0] = {paths!r}
t0 = time.perf_counter()
import handler
t1 = time.perf_counter()
if {warm!r} is not None:
    assert handler.handler({warm!r}, None) == {{"warm": True}}
print(t1 - t0, time.perf_counter() - t1)
"""
WARMABLE = {spec.name for spec in PIPELINE_FUNCTIONS} - {"await_approval", "promote"}


def lambda_env(spec: FunctionSpec) -> dict[str, str]:
    """What Lambda sets in a function's process (its reserved variables), the Powertools settings the stack sets, and
    resource names for the stores' clients (never called: building a client makes no request)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / spec.name),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "_HANDLER": "handler.handler",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "POWERTOOLS_SERVICE_NAME": "serverless-mlops",
        "POWERTOOLS_METRICS_NAMESPACE": "bench",
        c.ENV_ARTIFACT_BUCKET: "artifacts",
        c.ENV_LANDING_BUCKET: "landing",
        c.ENV_RUNS_TABLE: "runs",
        c.ENV_MODELS_TABLE: "models",
        c.ENV_LINEAGE_TABLE: "lineage",
    }


def init_seconds(python: str, spec: FunctionSpec, site: Path, code: Layer, runtime: Layer) -> tuple[float, float]:
    """Median (``import handler``, first-call setup) in a fresh process each time (-B: nothing written into the
    layer); the setup is 0 for a function the state machine does not warm."""
    paths = [str(ROOT / "functions" / spec.name), str(site), str(code.path / "python"), str(runtime.path / "python")]
    warm = c.WARM_UP_EVENT if spec.name in WARMABLE else None
    samples = []
    for _ in range(RUNS):
        script = IMPORT.format(paths=paths, warm=warm)
        proc = subprocess.run(
            [python, "-I", "-B", "-c", script], capture_output=True, text=True, env=lambda_env(spec), check=False
        )
        if proc.returncode:
            raise RuntimeError(f"{spec.name}: {proc.stderr.strip().splitlines()[-1:]}")
        imported, setup = (float(x) for x in proc.stdout.split()[-2:])
        samples.append((imported, setup))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def import_seconds(python: str, spec: FunctionSpec, site: Path, code: Layer, runtime: Layer) -> float:
    """Median wall time of ``import handler`` alone."""
    return init_seconds(python, spec, site, code, runtime)[0]


def _sources_only(floor: Layer, into: Path) -> Path:
    """The floor's site without its byte code: every import compiles, as sources-only layers did."""
    site = into / floor.name
    if not site.exists():
        shutil.copytree(floor.path / "python", site, ignore=shutil.ignore_patterns("__pycache__"))
    return site


def main() -> None:
    python = find_python("3.12")
    if python is None:
        raise SystemExit("python3.12 not found (pyenv install 3.12, or set MLOPS_RUNTIME_PYTHON)")
    code = build_code("3.12")
    runtime = build_dependencies(RUNTIME_STANDIN, "x86_64", "3.12")
    bundles = sorted({f.bundle for f in ALL_FUNCTIONS})
    shipped = {b: build_dependencies(b, "x86_64", "3.12") for b in bundles}
    floor = {b: build_dependencies(b, "x86_64", "3.12", budget=None) for b in bundles}
    print("## Cold import of each handler under python3.12, x86_64 (s, median of 3)\n")
    print(
        "| function | bundle | layout shipped | MB shipped | sources | shipped | floor | shipped ÷ floor "
        "| sources ÷ floor | first-call setup | memory MB | import + setup projected to memory |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in ALL_FUNCTIONS:
            layer, best = shipped[spec.bundle], floor[spec.bundle]
            t_shipped, setup = init_seconds(python, spec, layer.path / "python", code, runtime)
            t_floor = import_seconds(python, spec, best.path / "python", code, runtime)
            t_sources = import_seconds(python, spec, _sources_only(best, Path(tmp)), code, runtime)
            projected = (t_shipped + setup) * max(1.0, FULL_CPU_MB / spec.memory_mb)
            flag = "" if projected < INIT_LIMIT_S / 2 else " ⚠"
            print(
                f"| {spec.name} | {spec.bundle} | {layer.layout} | {layer.size / 1e6:.1f} | {t_sources:.2f} | "
                f"{t_shipped:.2f} | {t_floor:.2f} | {t_shipped / t_floor:.2f}x | {t_sources / t_floor:.2f}x | "
                f"{setup:.2f} | {spec.memory_mb} | {projected:.1f} s{flag} |"
            )


if __name__ == "__main__":
    main()
