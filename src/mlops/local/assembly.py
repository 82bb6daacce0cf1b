"""The CDK app's cloud assembly for offline use: synthesized once, cached by a hash of its sources."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlops.local.lambda_runtime import REPO_ROOT

STATE_DIR_ENV = "MLOPS_STATE_DIR"
KEEP_ASSEMBLIES = 8


def state_dir() -> Path:
    """Where offline state lives (``.mlops/`` in the repository unless MLOPS_STATE_DIR says otherwise)."""
    return Path(os.environ.get(STATE_DIR_ENV) or REPO_ROOT / ".mlops")


def _sources(config_paths: list[Path]) -> list[Path]:
    # Everything synthesis reads: the app, the configs, and the mlops package (the code layer's asset hash, the
    # catalog hash in every function's environment and the names in constants all end up in the templates).
    files = [REPO_ROOT / "cdk.json", *config_paths, REPO_ROOT / "layers" / "build.py"]
    files += sorted(p for p in (REPO_ROOT / "src" / "mlops").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    files += sorted((REPO_ROOT / "infra").rglob("*.py"))
    files += sorted((REPO_ROOT / "functions").glob("*/handler.py"))
    return files


def assembly_key(config_paths: list[Path], env: str) -> str:
    digest = hashlib.sha256(env.encode())
    for path in _sources(config_paths):
        # A config outside the repository is keyed by its name and content, not where it lies: the same config
        # written to two temporary directories is one assembly.
        digest.update(str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def synthesize(config_paths: list[Path], env: str = "dev", *, force: bool = False) -> Path:
    """Synthesize the app for these model configs (layers skipped: nothing runs them offline) into
    ``.mlops/cdk.out-<hash>``."""
    config_paths = [p.resolve() for p in config_paths]
    outdir = state_dir() / f"cdk.out-{assembly_key(config_paths, env)}"
    if outdir.joinpath("manifest.json").exists() and not force:
        os.utime(outdir)  # recently used: kept when older assemblies are pruned
        return outdir
    tmp = outdir.with_name(f"{outdir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    environments: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["environments"]
    if env not in environments:
        raise ValueError(f"unknown environment '{env}' in cdk.json; choose one of {sorted(environments)}")
    rel = [os.path.relpath(p, REPO_ROOT) for p in config_paths]
    context = {
        "env": env,
        "mlops:skip_layer_build": "true",
        "environments": {**environments, env: {**environments[env], "models": rel}},
    }
    proc = subprocess.run(
        [sys.executable, "-m", "infra.app"],
        cwd=REPO_ROOT,
        env={**os.environ, "CDK_OUTDIR": str(tmp), "CDK_CONTEXT_JSON": json.dumps(context)},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("b'"))[-3000:]
        raise RuntimeError(f"cdk synth failed:\n{tail}")
    shutil.rmtree(outdir, ignore_errors=True)
    tmp.rename(outdir)
    # Keep the few most recent (a project, its tests' variants: ~3 MB each); older ones are stale sources.
    cached = sorted(
        (d for d in outdir.parent.glob("cdk.out-*") if ".tmp" not in d.name and d != outdir),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    for old in cached[KEEP_ASSEMBLIES - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
    return outdir
