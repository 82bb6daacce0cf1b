"""The layer rules, read from the source (every import, at any depth): only the edge talks to AWS, and nothing that
ships to Lambda reaches into the tools around it.

- boto3/botocore: only the adapters, the wiring (``runtime``, ``handlers``), the platform client and ``local/``;
  everything else depends on the ports (``mlops.core.ports``), never on ``mlops.adapters``.
- The emulator, the CLI, the demo and the smoke test (``local``, ``cli``, ``demo``, ``smoke``) and the platform
  client are tools: no step, serving, monitoring or registry module imports them.
- Nothing in the package imports ``infra`` or ``tests``; the Lambda handlers import ``mlops`` only.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
BOTO_ALLOWED = (
    "mlops.adapters",
    "mlops.wiring.runtime",
    "mlops.wiring.handlers",
    "mlops.tools.platform",
    "mlops.local",
)
TOOLS = ("mlops.local", "mlops.tools")


def imports(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def violations(module: str, source: str) -> list[str]:
    """Each rule ``module`` breaks, given its source."""
    out = []
    for name in sorted(imports(source)):
        top = name.split(".")[0]
        if top in ("boto3", "botocore") and not module.startswith(BOTO_ALLOWED):
            out.append(f"{module} imports {name}: AWS calls belong in mlops.adapters")
        if name.startswith("mlops.adapters") and not module.startswith(BOTO_ALLOWED):
            out.append(f"{module} imports {name}: the domain depends on mlops.core.ports, not on the adapters")
        if name.startswith(TOOLS) and not module.startswith(TOOLS) and module != "mlops.__main__":
            out.append(f"{module} imports {name}: the tools around the system are not part of it")
        if top in ("infra", "tests"):
            out.append(f"{module} imports {name}: the shipped package cannot import {top}")
    return out


def package_modules() -> dict[str, str]:
    src = ROOT / "src"
    return {
        ".".join(path.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): path.read_text()
        for path in (src / "mlops").rglob("*.py")
    }


def test_given_the_package_then_every_module_keeps_the_layer_rules():
    broken = [v for module, source in package_modules().items() for v in violations(module, source)]
    assert broken == []


def test_given_the_lambda_handlers_then_they_import_only_the_package_and_the_standard_library():
    for path in (ROOT / "functions").glob("*/handler.py"):
        found = {name.split(".")[0] for name in imports(path.read_text())} - sys.stdlib_module_names
        assert found <= {"mlops", "aws_lambda_powertools"}, (path, found)


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("mlops.steps.extract", "import boto3\n", "AWS calls belong in mlops.adapters"),
        ("mlops.steps.prepare", "from mlops.adapters.artifacts import S3ArtifactStore\n", "not on the adapters"),
        ("mlops.steps.train", "def f():\n    from botocore.exceptions import ClientError\n", "AWS calls"),
        ("mlops.serving.api", "from mlops.local.emulator import LocalCloud\n", "tools around the system"),
        ("mlops.core.registry", "from mlops.tools.platform import Platform\n", "tools around the system"),
        ("mlops.monitoring.monitor", "import infra.app\n", "cannot import infra"),
    ],
)
def test_given_a_step_that_imports_boto3_or_a_tool_then_the_rule_reports_it(module, source, rule):
    (problem,) = violations(module, source)
    assert rule in problem and module in problem


def _imports_with_submodules(source: str, modules: dict[str, str]) -> set[str]:
    """The ``mlops`` modules a source imports, counting ``from mlops.x import y`` as ``mlops.x.y`` when y is one."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mlops")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("mlops"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
    return found


def test_given_the_code_layer_then_every_module_a_handler_reaches_is_shipped_and_no_tool_is():
    from layers.build import SOURCE, _shipped

    modules = package_modules()
    todo = [
        m
        for path in (ROOT / "functions").glob("*/handler.py")
        for m in _imports_with_submodules(path.read_text(), modules)
    ]
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        if name in reached or name not in modules:
            continue
        reached.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing a module runs its packages
        todo += _imports_with_submodules(modules[name], modules)
    assert {"mlops.serving.api", "mlops.steps.train", "mlops.monitoring.monitor", "mlops.steps.trigger"} <= reached

    def file_of(name: str) -> Path:
        path = SOURCE.parent.joinpath(*name.split("."))
        return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")

    assert [m for m in sorted(reached) if not _shipped(file_of(m))] == []
    assert not any(_shipped(file_of(m)) for m in ("mlops.local.emulator", "mlops.tools.cli", "mlops.tools.samples"))


# What each dependency layer lacks (requirements/<bundle>.txt): a handler importing one of these on a cold start
# would fail in Lambda with ModuleNotFoundError, whatever the tests on the dev environment say.
NOT_IN_BUNDLE = {
    "base": ("numpy", "pandas", "sklearn", "scipy", "onnxruntime", "onnx", "skl2onnx", "fastparquet"),
    "data": ("sklearn", "scipy", "onnxruntime", "onnx", "skl2onnx"),
    "export": ("fastparquet", "onnxruntime"),
    "serving": ("pandas", "sklearn", "scipy", "onnx", "skl2onnx", "fastparquet"),
}


@pytest.mark.parametrize("bundle", sorted(NOT_IN_BUNDLE))
def test_given_each_bundle_then_its_handlers_import_nothing_its_layer_lacks(bundle):
    """Every handler of the bundle imported in one fresh process (the union of what they load is checked)."""
    import json
    import subprocess

    from infra.functions import ALL_FUNCTIONS

    names = [f.name for f in ALL_FUNCTIONS if f.bundle == bundle]
    script = (
        "import importlib.util, json, sys\n"
        f"for name in {names!r}:\n"
        f"    path = {str(ROOT / 'functions')!r} + '/' + name + '/handler.py'\n"
        "    spec = importlib.util.spec_from_file_location('handler_' + name, path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    env = {"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert not loaded & set(NOT_IN_BUNDLE[bundle]), (
        f"{bundle} handlers {names} import {loaded & set(NOT_IN_BUNDLE[bundle])}"
    )
