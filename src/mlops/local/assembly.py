"""The CDK app's cloud assembly for offline use: synthesized once, cached by a hash of its sources."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mlops
from mlops.core.project import PROJECT_ENV, Project, ProjectNotFoundError

STATE_DIR_ENV = "MLOPS_STATE_DIR"
KEEP_ASSEMBLIES = 8
PRUNE_AFTER_S = 600


def state_dir() -> Path:
    """Where offline state lives: MLOPS_STATE_DIR, else the project's ``.mlops/`` (the working directory's, outside
    a project)."""
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV])
    try:
        return Project.find().state_dir
    except ProjectNotFoundError:
        return Path.cwd() / ".mlops"


PACKAGE = Path(mlops.__file__).resolve().parent


def _sources(project: Project, config_paths: list[Path]) -> list[tuple[str, Path]]:
    """Everything synthesis reads, each with the name it is keyed by: the project's cdk.json, the configs and its
    components; the platform's package (the code layer's asset hash, the catalog hash in every function's
    environment and the names in constants all end up in the templates), its CDK app, handlers and layer recipe
    (links into the repository here, copies in an installed package: read through them)."""
    files = [("cdk.json", project.root / "cdk.json")]
    # A config outside the project is keyed by its name and content, not where it lies: the same config written to
    # two temporary directories is one assembly.
    files += [(str(p.relative_to(project.root)) if p.is_relative_to(project.root) else p.name, p) for p in config_paths]
    if project.components is not None:
        files += [
            (f"components/{p.relative_to(project.components)}", p) for p in sorted(project.components.rglob("*.py"))
        ]
    for folder in (PACKAGE, *(PACKAGE / name for name in ("infra", "functions", "layers"))):
        root = folder.resolve()
        files += [(f"{folder.name}/{p.relative_to(root)}", p) for p in _source_files(root)]
    return files


SOURCE_SUFFIXES = (".py", ".txt", ".j2", ".yaml", ".json")
NOT_SOURCES = frozenset({"__pycache__", ".build"})  # byte code; the layers' pip installs (gigabytes once built)


def _source_files(root: Path) -> list[Path]:
    """The source files under ``root``, sorted, never descending into byte code or built layers (walking a built
    ``layers/.build`` took seconds at every emulator start) nor through links (the package's links into the
    repository are walked as folders of their own)."""
    found = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in NOT_SOURCES and not os.path.islink(os.path.join(directory, d))]
        found += [Path(directory, n) for n in names if n.endswith(SOURCE_SUFFIXES)]
    return sorted(found)


def assembly_key(config_paths: list[Path], env: str, project: Project | None = None) -> str:
    project = project or Project.find()
    digest = hashlib.sha256(env.encode())
    for name, path in _sources(project, config_paths):
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def synthesize(
    config_paths: list[Path], env: str = "dev", *, project: Project | None = None, force: bool = False
) -> Path:
    """Synthesize the platform's app for the project's environment ``env`` with these model configs (layers
    skipped: nothing runs them offline) into ``.mlops/cdk.out-<hash>``."""
    project = project or Project.find()
    config_paths = [p.resolve() for p in config_paths]
    outdir = state_dir() / f"cdk.out-{assembly_key(config_paths, env, project)}"
    if outdir.joinpath("manifest.json").exists() and not force:
        os.utime(outdir)  # recently used: kept when older assemblies are pruned
        return outdir
    # One synthesis of an assembly at a time (test workers, a demo and `mlops local up` may want the same one at
    # once): whoever waited finds it made. An assembly is only ever renamed into place whole.
    outdir.parent.mkdir(parents=True, exist_ok=True)
    with open(outdir.with_name(f".{outdir.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if outdir.joinpath("manifest.json").exists() and not force:
            os.utime(outdir)
            return outdir
        _synthesize(project, config_paths, env, outdir)
    _prune(outdir)
    return outdir


def _synthesize(project: Project, config_paths: list[Path], env: str, outdir: Path) -> None:
    tmp = outdir.with_name(f"{outdir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    environments: dict[str, Any] = project.environments()
    if env not in environments:
        raise ValueError(
            f"unknown environment '{env}' in {project.root / 'cdk.json'}; choose one of {sorted(environments)}"
        )
    rel = [os.path.relpath(p, project.root) for p in config_paths]
    context = {
        "env": env,
        "mlops:skip_layer_build": "true",
        "environments": {**environments, env: {**environments[env], "models": rel}},
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mlops.infra.app"],
        cwd=project.root,
        env={
            **os.environ,
            "CDK_OUTDIR": str(tmp),
            "CDK_CONTEXT_JSON": json.dumps(context),
            PROJECT_ENV: str(project.root),
        },
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("b'"))[-3000:]
        raise RuntimeError(f"cdk synth failed:\n{tail}")
    shutil.rmtree(outdir, ignore_errors=True)  # a forced synthesis replaces it
    tmp.rename(outdir)


def _prune(outdir: Path) -> None:
    """Keep the few most recent assemblies (a project, its tests' variants: ~3 MB each); older ones are stale
    sources — unless used in the last minutes (another process may be starting from it)."""
    now = time.time()
    # Another process (a test worker, a demo) may prune the same folder at the same time: an assembly that is gone
    # between the listing and its stat is skipped, not an error.
    listed = [d for d in outdir.parent.glob("cdk.out-*") if ".tmp" not in d.name and d != outdir]
    stamped = [(d, m) for d in listed if (m := _mtime(d)) is not None]
    cached = sorted(stamped, key=lambda dm: dm[1], reverse=True)
    for old, mtime in cached[KEEP_ASSEMBLIES - 1 :]:
        if now - mtime > PRUNE_AFTER_S:
            shutil.rmtree(old, ignore_errors=True)
            old.with_name(f".{old.name}.lock").unlink(missing_ok=True)


def _mtime(folder: Path) -> float | None:
    """The folder's modification time, or None if it is not a folder (any more)."""
    try:
        st = folder.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime if stat.S_ISDIR(st.st_mode) else None
