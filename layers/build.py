"""Lambda layers built without Docker, cached, trimmed and measured against AWS's 250 MB limit.

A dependency layer per bundle (``requirements/<bundle>.txt``) is installed with
``pip install --platform manylinux… --only-binary=:all: --python-version 3.12 --target …`` for the
Lambda architecture, trimmed (tests, caches, headers, sources; never a shared object — stripping
``.so`` files broke scipy's OpenBLAS), and byte-compiled with the runtime's Python: byte code beside the sources
where both fit (``__pycache__``), byte code *instead of* the sources where only that fits (the legacy
``compileall -b`` layout: ``module.pyc`` where ``module.py`` was, which CPython imports without a source) — a cold
import reads byte code either way, never compiles.
The domain package ``mlops`` goes into a small code layer of its own, copied from the installed package (in this
repository, ``src/mlops``) at synth time, with the project's own ``components/`` package beside it. Builds are cached
by a hash of their inputs under ``layers/.build`` (or ``~/.cache/serverless-mlops/layers`` where the package is not
writable, or ``MLOPS_LAYER_CACHE``).

Run ``python -m mlops.layers.build`` to build every bundle and print the sizes.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import mlops

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # this repository (the benchmarks build from it)
BUILD = Path(
    os.environ.get("MLOPS_LAYER_CACHE")
    or (HERE / ".build" if os.access(HERE, os.W_OK) else Path.home() / ".cache" / "serverless-mlops" / "layers")
)
REQUIREMENTS = HERE / "requirements"
CONSTRAINTS = REQUIREMENTS / "constraints.txt"  # one set of pins for every layer and the test environment
SOURCE = Path(mlops.__file__).resolve().parent  # the package as installed (editable: src/mlops)
BUILDER_VERSION = "11"
LAMBDA_LIMIT_BYTES = 262_144_000  # 250 MB unzipped, function code and all its layers together
# A dependency layer may use the limit less room for the mlops code layer (<1 MB), a handler and a margin.
DEPENDENCY_BUDGET_BYTES = LAMBDA_LIMIT_BYTES - 4_000_000
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3")
TRIM_DIRS = ("tests", "__pycache__")
# onnxruntime's C-API library for non-Python consumers: the Python binding links ORT statically and never
# loads it (readelf shows no NEEDED entry; layers/verify.py runs predictions without it). 27 MB.
TRIM_GLOBS = ("onnxruntime/capi/libonnxruntime.so*",)
# numpy.f2py looks trimmable but scipy imports it: layers/verify.py caught that.
# onnxruntime's transformers/tools/quantization are offline utilities that `import onnxruntime` never loads.
TRIM_PATHS = (
    "onnx/backend/test",
    "numpy/_core/include",
    "onnxruntime/transformers",
    "onnxruntime/tools",
    "onnxruntime/quantization",
    "onnxruntime/datasets",
)
TRIM_SUFFIXES = (".pyi", ".pyx", ".pxd", ".pxi", ".c", ".cpp", ".h", ".hpp", ".f", ".f90")
BUNDLES = ("base", "data", "train", "export", "serving", "scoring")
RUNTIME_STANDIN = "runtime"  # boto3 & co. as the Lambda runtime ships them; never deployed
# Installed as dependencies but never imported at run time by that bundle (layers/verify.py proves it).
UNUSED_AT_RUNTIME = {"serving": ("google", "protobuf"), "scoring": ("google", "protobuf")}
# Subpackages a bundle's functions never import (exporting every family, a feature-components pipeline and the
# probe graph imports scipy's linalg, sparse, optimize, special, stats, spatial, interpolate, integrate, ndimage and
# fft — not these; python -m mlops.layers.verify proves it). With LightGBM and onnxmltools, the export bundle's byte
# code fits inside Lambda's limit only without them (arm64: 256.9 MB as sources, over the budget as byte code).
UNUSED_PATHS = {"export": ("scipy/io", "scipy/signal", "scipy/cluster", "scipy/odr", "onnx/reference")}
PLATFORMS = {
    "arm64": ["manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"],
    "x86_64": ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64"],
}


class BundleTooLargeError(RuntimeError):
    """A function with its layers would exceed Lambda's 250 MB unzipped limit."""


@dataclass(frozen=True)
class Layer:
    name: str
    path: Path  # the layer root (contains python/)
    size: int  # apparent bytes, as Lambda counts them
    compiled: bool  # byte code shipped (beside the sources, or instead of them)
    placeholder: bool = False
    sourceless: bool = False  # byte code instead of the sources

    @property
    def layout(self) -> str:
        return "byte code only" if self.sourceless else "byte code + sources" if self.compiled else "sources only"


def dir_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def _requirements_text(bundle: str) -> str:
    """The bundle's requirements with ``-r`` includes expanded (what the cache key hashes)."""
    lines = []
    for line in (REQUIREMENTS / f"{bundle}.txt").read_text().splitlines():
        stripped = line.split("#", 1)[0].strip()
        if stripped.startswith("-r "):
            lines.append(_requirements_text(Path(stripped[3:].strip()).stem))
        elif stripped:
            lines.append(stripped)
    return "\n".join(lines)


def find_python(version: str) -> str | None:
    """The runtime's Python for byte-compiling: PATH, then pyenv's versions."""
    candidates = [os.environ.get("MLOPS_RUNTIME_PYTHON", ""), shutil.which(f"python{version}") or ""]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")))
    for exe in filter(None, candidates):
        # a pyenv shim is on PATH even when that version is not selected: check that it runs
        probe = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(int(x) for x in version.split("."))):
            return exe
    return None


def trim(site: Path, bundle: str = "") -> None:
    """Remove what the bundle's functions never import: unused packages, tests, docs, caches, and what the
    Lambda runtime provides (except for the stand-in runtime's own bundle)."""
    _remove_packages(site, UNUSED_AT_RUNTIME.get(bundle, ()))
    for rel in (*TRIM_PATHS, *UNUSED_PATHS.get(bundle, ())):
        shutil.rmtree(site / rel, ignore_errors=True)
    for pattern in TRIM_GLOBS:
        for path in site.glob(pattern):
            path.unlink()
    _remove_packages(site, () if bundle == RUNTIME_STANDIN else PROVIDED_BY_RUNTIME)
    shutil.rmtree(site / "bin", ignore_errors=True)
    for root, dirs, files in os.walk(site, topdown=True):
        for d in [d for d in dirs if d in TRIM_DIRS]:
            shutil.rmtree(os.path.join(root, d), ignore_errors=True)
            dirs.remove(d)
        for f in files:
            if f.endswith(TRIM_SUFFIXES):
                os.remove(os.path.join(root, f))


def _remove_packages(site: Path, packages: Iterable[str]) -> None:
    for pkg in packages:
        shutil.rmtree(site / pkg, ignore_errors=True)
        for info in site.glob(f"{pkg}-*.dist-info"):
            shutil.rmtree(info, ignore_errors=True)


def compile_site(site: Path, python: str) -> None:
    """Byte-compile every module with the runtime's Python into ``__pycache__`` (unchecked hashes: a layer never
    changes, so no import stats a source to validate its byte code)."""
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(site)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _drop_byte_code_caches(site: Path) -> None:
    for cache in [p for p in site.rglob("__pycache__") if p.is_dir()]:
        shutil.rmtree(cache, ignore_errors=True)


def _compile_within(site: Path, python: str, budget: int | None) -> tuple[bool, bool]:
    """Byte-compile ``site`` in the largest layout that fits ``budget``: (compiled, sourceless).

    Compiled once, into ``__pycache__``; when sources and byte code together exceed the budget, each
    ``__pycache__/<module>.cpython-3XX.pyc`` moves to ``<module>.pyc`` in place of ``<module>.py`` (the legacy
    sourceless layout; the byte code is the same — the loader checks no source for it)."""
    compile_site(site, python)
    if budget is None or dir_size(site) <= budget:
        return True, False
    moves = []
    for pyc in site.rglob("__pycache__/*.pyc"):
        module = pyc.name.split(".", 1)[0]
        source = pyc.parent.parent / f"{module}.py"
        if source.exists():
            moves.append((pyc, source))
    if dir_size(site) - sum(source.stat().st_size for _, source in moves) <= budget:
        for pyc, source in moves:
            pyc.replace(source.with_suffix(".pyc"))
            source.unlink()
        _drop_byte_code_caches(site)
        return True, True
    _drop_byte_code_caches(site)
    print(f"[layers] {site.parent.name}: left as sources; even byte code alone exceeds the budget", file=sys.stderr)
    return False, False


def build_dependencies(
    bundle: str, arch: str = "arm64", python: str = "3.12", budget: int | None = DEPENDENCY_BUDGET_BYTES
) -> Layer:
    """Build (or reuse) the dependency layer of ``bundle``, byte-compiled in the largest layout within ``budget``
    (None: byte code beside the sources whatever the size — the benchmarks' floor, not deployable)."""
    reqs = _requirements_text(bundle) + "\n" + CONSTRAINTS.read_text()
    key = hashlib.sha256(f"{BUILDER_VERSION}|{arch}|{python}|{budget}|{reqs}".encode()).hexdigest()[:16]
    target = BUILD / f"{bundle}-{arch}-py{python}-{key}"
    marker = target / ".complete"
    if marker.exists():
        compiled, sourceless = (target / ".compiled").exists(), (target / ".sourceless").exists()
        return Layer(bundle, target, dir_size(target), compiled, sourceless=sourceless)
    BUILD.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{bundle}-", dir=BUILD))
    site = tmp / "python"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--target",
        str(site),
        "-r",
        str(REQUIREMENTS / f"{bundle}.txt"),
        "-c",
        str(CONSTRAINTS),
    ]
    for plat in PLATFORMS[arch]:
        cmd += ["--platform", plat]
    print(f"[layers] pip install {bundle} for {arch}/python{python} …", file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)
    trim(site, bundle)
    ship_openmp(tmp)
    compiled = sourceless = False
    runtime_python = find_python(python)
    if runtime_python:
        compiled, sourceless = _compile_within(site, runtime_python, budget)
        if compiled:
            (tmp / ".compiled").touch()
        if sourceless:
            (tmp / ".sourceless").touch()
    else:
        print(f"[layers] python{python} not found: {bundle} left uncompiled", file=sys.stderr)
    (tmp / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return Layer(bundle, target, dir_size(target), compiled, sourceless=sourceless)


def ship_openmp(layer: Path) -> None:
    """LightGBM's library needs ``libgomp.so.1``, which the Lambda runtime (Amazon Linux 2023, minimal) does not
    have, and LightGBM's wheels do not carry. scikit-learn's wheel carries one for the same architecture (auditwheel
    vendors it as ``scikit_learn.libs/libgomp-<hash>.so.1.0.0``): a copy goes to ``lib/libgomp.so.1`` in the layer,
    ``/opt/lib`` in Lambda, which is on the runtime's ``LD_LIBRARY_PATH``. (python -m mlops.layers.verify loads
    LightGBM with only the layer's copy to find.)"""
    site = layer / "python"
    if not (site / "lightgbm").is_dir():
        return
    vendored = sorted((site / "scikit_learn.libs").glob("libgomp*.so*"))
    if not vendored:
        raise RuntimeError(f"{layer.name}: lightgbm needs libgomp.so.1 and no wheel in the layer carries one")
    (layer / "lib").mkdir(exist_ok=True)
    shutil.copy2(vendored[0], layer / "lib" / "libgomp.so.1")


# The tools around the system never run in Lambda: the emulator, the CLI, the demo, the smoke test, the platform
# client, the sample data and the example configs stay out of the code layer (tests/unit/test_layer_rules.py
# checks that everything a handler reaches, at any depth, is shipped).
NOT_SHIPPED = frozenset({"local", "tools", "examples", "starter", "infra", "functions", "layers"})


def _shipped(path: Path) -> bool:
    rel = path.relative_to(SOURCE).parts
    return "__pycache__" not in rel and rel[0] not in NOT_SHIPPED


def build_code(python: str = "3.12", components: Path | None = None) -> Layer:
    """The ``mlops`` package as a layer of its own, copied from the installed package (its single source), without
    the tools that never run in Lambda; and the project's ``components`` package beside it, as sources (the lineage
    hashes a component's source file), when the project has one."""
    digest = hashlib.sha256()
    files = [
        (p, Path("mlops") / p.relative_to(SOURCE)) for p in sorted(SOURCE.rglob("*")) if p.is_file() and _shipped(p)
    ]
    if components is not None:
        files += [
            (p, Path("components") / p.relative_to(components))
            for p in sorted(components.rglob("*.py"))
            if "__pycache__" not in p.parts
        ]
    for p, rel in files:
        digest.update(str(rel).encode())
        digest.update(p.read_bytes())
    target = BUILD / f"code-py{python}-{digest.hexdigest()[:16]}"
    if not (target / ".complete").exists():
        BUILD.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".code-", dir=BUILD))
        for p, rel in files:
            (tmp / "python" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, tmp / "python" / rel)
        runtime_python = find_python(python)
        if runtime_python:
            compile_site(tmp / "python", runtime_python)
        (tmp / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return Layer("code", target, dir_size(target / "python"), find_python(python) is not None)


TASK_DOCKERFILE = """\
# serverless-mlops: the training task's image (ECS Fargate), built by `cdk deploy` from the same pins as the train
# bundle's layer (requirements/train.txt under requirements/constraints.txt) and the same mlops code layer.
FROM public.ecr.aws/docker/library/python:{python}-slim
# LightGBM's OpenMP runtime (the Lambda layer ships its own copy of it).
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
COPY requirements/ /opt/mlops/requirements/
RUN pip install --no-cache-dir --only-binary=:all: -c /opt/mlops/requirements/constraints.txt \\
    -r /opt/mlops/requirements/{bundle}.txt -r /opt/mlops/requirements/runtime.txt
COPY code/ /opt/mlops/code/
ENV PYTHONPATH=/opt/mlops/code PYTHONUNBUFFERED=1
USER 1000:1000
CMD ["python", "-m", "mlops.tasks.train"]
"""


def build_task_context(code: Layer, python: str = "3.12", bundle: str = "train") -> Path:
    """The training task image's build context: a Dockerfile, the requirement files and pins, and the code layer's
    ``python/`` tree (the package the train function runs). Nothing is built here: ``cdk synth`` stages this
    directory as a Docker image asset and ``cdk deploy`` builds and pushes it."""
    dockerfile = TASK_DOCKERFILE.format(python=python, bundle=bundle)
    digest = hashlib.sha256(dockerfile.encode() + code.path.name.encode())
    for p in sorted(REQUIREMENTS.glob("*.txt")):
        digest.update(p.name.encode() + p.read_bytes())
    target = BUILD / f"task-context-{digest.hexdigest()[:16]}"
    if not (target / ".complete").exists():
        BUILD.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".task-", dir=BUILD))
        (tmp / "Dockerfile").write_text(dockerfile)
        shutil.copytree(REQUIREMENTS, tmp / "requirements")
        shutil.copytree(code.path / "python", tmp / "code", ignore=shutil.ignore_patterns("__pycache__"))
        (tmp / ".dockerignore").write_text(".complete\n")
        (tmp / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


def placeholder(bundle: str) -> Layer:
    """A tiny stand-in so synthesis in tests needs no downloads."""
    target = BUILD / f"placeholder-{bundle}"
    (target / "python").mkdir(parents=True, exist_ok=True)
    (target / "python" / f"{bundle}.placeholder").write_text("layers skipped: mlops:skip_layer_build\n")
    return Layer(bundle, target, 0, False, placeholder=True)


def check_function_size(function: str, code_dir: Path, layers: list[Layer]) -> int:
    """Total unzipped bytes of a function; raise BundleTooLargeError above Lambda's limit."""
    total = dir_size(code_dir) + sum(layer.size for layer in layers)
    if total > LAMBDA_LIMIT_BYTES:
        parts = ", ".join(f"{layer.name} {layer.size / 1e6:.1f} MB" for layer in layers)
        raise BundleTooLargeError(
            f"function '{function}' is {total / 1e6:.1f} MB unzipped with its layers ({parts}); "
            f"AWS Lambda allows {LAMBDA_LIMIT_BYTES / 1e6:.1f} MB"
        )
    return total


def check_pins(python: str = "3.12") -> list[str]:
    """Resolve every bundle against the pins for each Lambda architecture (a dry run: nothing installed)."""
    problems = []
    for arch, platforms in PLATFORMS.items():
        for bundle in BUNDLES:
            cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed"]
            cmd += ["--only-binary=:all:", "--implementation", "cp", "--python-version", python]
            cmd += ["--target", tempfile.mkdtemp(), "-r", str(REQUIREMENTS / f"{bundle}.txt"), "-c", str(CONSTRAINTS)]
            for plat in platforms:
                cmd += ["--platform", plat]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                problems.append(f"{bundle} {arch}: {proc.stderr.strip().splitlines()[-1]}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="arm64")
    parser.add_argument("--python", default="3.12")
    parser.add_argument("--check-pins", action="store_true", help="Only check that the pins resolve everywhere.")
    parser.add_argument("bundles", nargs="*", default=list(BUNDLES))
    args = parser.parse_args()
    if args.check_pins:
        problems = check_pins(args.python)
        print("\n".join(problems) or "pins resolve for every bundle on arm64 and x86_64")
        sys.exit(1 if problems else 0)
    code = build_code(args.python)
    print(f"{'layer':<10} {'unzipped MB':>12} {'+ mlops MB':>11}  layout")
    for bundle in args.bundles:
        layer = build_dependencies(bundle, args.arch, args.python)
        total = layer.size + code.size
        print(f"{bundle:<10} {layer.size / 1e6:>12.1f} {total / 1e6:>11.1f}  {layer.layout}")


if __name__ == "__main__":
    main()
