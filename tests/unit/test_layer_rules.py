"""The layer rules, read from the source (every import, at any depth), as the package's folders name them:

| layer | may import (besides itself and the package root) |
|---|---|
| ``mlops.core`` — domain records and ports | nothing of mlops |
| ``mlops.data`` — tables, statistics, schema | core |
| ``mlops.components`` — the public component API | core |
| ``mlops.ml`` — models, features, export | core, data, components, serving (the signature the graph carries) |
| ``mlops.reports`` — pages from records | core |
| ``mlops.serving`` | core, monitoring (the capture line), wiring (the serve function's environment) |
| ``mlops.monitoring`` | core, data, ml, reports |
| ``mlops.steps`` | core, data, ml, components, serving, monitoring, reports |
| ``mlops.adapters`` — the edge (boto3) | core |
| ``mlops.wiring`` — environment → adapters; what handlers share | core, adapters |
| ``mlops.functions`` — the Lambda handlers | core, wiring, steps, serving, monitoring, reports |
| ``mlops.infra`` — the CDK app | core, components (they must import), wiring (its names), functions, layers |
| ``mlops.layers`` — the layer recipe | nothing of mlops |
| ``mlops.testing`` — the public component checks | core, data, ml, components, serving |
| ``mlops.local``, ``mlops.tools`` — the emulator, the CLI, the demo | anything |

boto3/botocore: only the adapters, the wiring, the platform client and ``local/``. Nothing imports ``tests``.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "mlops"
BOTO_ALLOWED = ("mlops.adapters", "mlops.wiring", "mlops.tools.platform", "mlops.local")
MAY_IMPORT = {
    "core": set(),
    "data": {"core"},
    "components": {"core"},
    "ml": {"core", "data", "components", "serving"},
    "reports": {"core"},
    "serving": {"core", "monitoring", "wiring"},
    "monitoring": {"core", "data", "ml", "reports"},
    "steps": {"core", "data", "ml", "components", "serving", "monitoring", "reports"},
    "adapters": {"core"},
    "wiring": {"core", "adapters"},
    "tasks": {"core", "wiring", "steps"},  # container entry points (ECS tasks), adapters as the handlers are
    "functions": {"core", "wiring", "steps", "serving", "monitoring", "reports"},
    "infra": {"core", "components", "wiring", "functions", "layers"},
    "layers": set(),
    "testing": {"core", "data", "ml", "components", "serving"},
}


def imports(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(module: str, source: str) -> list[str]:
    """Each rule ``module`` breaks, given its source."""
    out = []
    mine = layer_of(module)
    for name in sorted(imports(source)):
        top = name.split(".")[0]
        if top in ("boto3", "botocore") and not module.startswith(BOTO_ALLOWED):
            out.append(f"{module} imports {name}: AWS calls belong in mlops.adapters")
        if top == "tests":
            out.append(f"{module} imports {name}: the package cannot import tests")
        theirs = layer_of(name)
        if top == "mlops" and theirs and theirs != mine and mine in MAY_IMPORT and theirs not in MAY_IMPORT[mine]:
            out.append(
                f"{module} imports {name}: the {mine} layer may import only {sorted(MAY_IMPORT[mine]) or 'nothing'}"
                + (" (the tools around the system are not part of it)" if theirs in ("tools", "local") else "")
            )
    return out


def package_modules() -> dict[str, str]:
    """Every module of the package, the platform's CDK app, handlers and layer recipe included (links in src/mlops
    to the repository's top-level folders)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        out[".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")] = (
            path.read_text()
        )
    for linked in ("infra", "functions", "layers"):
        for path in (ROOT / linked).rglob("*.py"):
            if ".build" not in path.parts:
                name = "mlops." + ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                out[name] = path.read_text()
    return out


def test_given_the_package_then_every_module_keeps_the_layer_rules():
    modules = package_modules()
    assert {"mlops.core.config", "mlops.infra.app", "mlops.functions.serve.handler", "mlops.layers.build"} <= set(
        modules
    )
    broken = [v for module, source in modules.items() for v in violations(module, source)]
    assert broken == []


def test_given_the_lambda_handlers_then_they_import_only_the_package_and_the_standard_library():
    for path in (ROOT / "functions").glob("*/handler.py"):
        found = {name.split(".")[0] for name in imports(path.read_text())} - sys.stdlib_module_names
        assert found <= {"mlops", "aws_lambda_powertools"}, (path, found)


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("mlops.steps.extract", "import boto3\n", "AWS calls belong in mlops.adapters"),
        (
            "mlops.steps.prepare",
            "from mlops.adapters.artifacts import S3ArtifactStore\n",
            "steps layer may import only",
        ),
        ("mlops.steps.train", "def f():\n    from botocore.exceptions import ClientError\n", "AWS calls"),
        ("mlops.serving.api", "from mlops.local.emulator import LocalCloud\n", "tools around the system"),
        ("mlops.core.registry", "from mlops.tools.platform import Platform\n", "tools around the system"),
        ("mlops.core.config", "from mlops.data.frames import read_table\n", "core layer may import only nothing"),
        ("mlops.serving.onnx_model", "from mlops.ml.models import predict\n", "may import only ['core'"),
        ("mlops.monitoring.monitor", "from mlops.steps.validate_data import x\n", "monitoring layer may import only"),
        ("mlops.infra.app", "from mlops.tools.cli import app\n", "tools around the system"),
        ("mlops.monitoring.monitor", "import tests.chain\n", "cannot import tests"),
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
    from mlops.layers.build import SOURCE, _shipped

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
    "base": (
        "numpy",
        "pandas",
        "sklearn",
        "scipy",
        "onnxruntime",
        "onnx",
        "skl2onnx",
        "fastparquet",
        "lightgbm",
        "duckdb",
        "datasketches",
    ),
    "data": ("sklearn", "scipy", "onnxruntime", "onnx", "skl2onnx", "lightgbm", "onnxmltools", "fastparquet"),
    "train": ("duckdb", "datasketches"),
    "export": ("fastparquet", "onnxruntime", "duckdb", "datasketches"),
    "serving": (
        "pandas",
        "sklearn",
        "scipy",
        "onnx",
        "skl2onnx",
        "fastparquet",
        "lightgbm",
        "onnxmltools",
        "duckdb",
        "datasketches",
    ),
    "scoring": (
        "pandas",
        "sklearn",
        "scipy",
        "onnx",
        "skl2onnx",
        "fastparquet",
        "lightgbm",
        "onnxmltools",
        "datasketches",
    ),
}


@pytest.mark.parametrize("bundle", sorted(NOT_IN_BUNDLE))
def test_given_each_bundle_then_its_handlers_import_nothing_its_layer_lacks(bundle):
    """Every handler of the bundle imported in one fresh process (the union of what they load is checked)."""
    import json
    import subprocess

    from mlops.infra.functions import ALL_FUNCTIONS

    names = [f.name for f in ALL_FUNCTIONS if f.bundle == bundle]
    script = (
        "import importlib.util, json, sys\n"
        f"for name in {names!r}:\n"
        f"    path = {str(ROOT / 'functions')!r} + '/' + name + '/handler.py'\n"
        "    spec = importlib.util.spec_from_file_location('handler_' + name, path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    # PYTHONPATH passed on: the handlers import the package under test (a checkout), not whichever is installed
    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PATH": "",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert not loaded & set(NOT_IN_BUNDLE[bundle]), (
        f"{bundle} handlers {names} import {loaded & set(NOT_IN_BUNDLE[bundle])}"
    )
