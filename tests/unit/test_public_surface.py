"""The platform as a library: what a project may import is a promise — mlops.components, mlops.testing and
mlops.infra (its MlopsApp) — and the project `mlops init` writes imports nothing else of it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from mlops.tools.samples import REPOSITORY, STARTER

pytestmark = pytest.mark.unit

PUBLIC = {"mlops.components", "mlops.testing", "mlops.infra"}


def _mlops_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mlops"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mlops")}
    return found


def test_given_the_starter_project_then_it_imports_only_the_public_surface():
    used = {m for path in STARTER.rglob("*.py") for m in _mlops_imports(path)}
    assert used and used <= PUBLIC, used - PUBLIC


def test_given_the_public_modules_then_each_says_what_it_exports_and_the_architecture_lists_them():
    import mlops.components
    import mlops.infra
    import mlops.testing

    assert {"FeatureComponent", "Ops", "register_model_converter", "load", "provenance"} <= set(
        mlops.components.__all__
    )
    assert {"check_component", "assert_component_ok"} <= set(mlops.testing.__all__)
    assert mlops.infra.__all__ == ["MlopsApp"] and mlops.infra.MlopsApp.__name__ == "MlopsApp"
    architecture = (REPOSITORY / "docs" / "architecture.md").read_text()
    for name in (*PUBLIC, "FeatureComponent", "check_component", "MlopsApp", "register_model_converter"):
        assert name in architecture, name


def test_given_the_starter_then_its_cdk_cli_pin_is_the_platforms():
    ours = json.loads((REPOSITORY / "package.json").read_text())["devDependencies"]["aws-cdk"]
    theirs = json.loads((STARTER / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert theirs == ours


def test_given_mlops_init_then_the_project_pins_this_platform_and_refuses_a_folder_in_use(tmp_path):
    from mlops import __version__
    from mlops.tools.starter import init_project

    written = init_project(tmp_path / "p")
    names = {p.relative_to(tmp_path / "p").as_posix() for p in written}
    assert {"cdk.json", "app.py", "models/weather.yaml", "components/features.py", "tests/test_components.py"} <= names
    assert {
        "data/seattle-weather.csv",
        ".github/workflows/ci.yml",
        "README.md",
        "scripts/demo",
        "scripts/test",
    } <= names
    assert f"serverless-mlops[pipeline,infra,cli]=={__version__}" in (tmp_path / "p" / "requirements.txt").read_text()
    assert (tmp_path / "p" / "scripts" / "test").stat().st_mode & 0o111
    with pytest.raises(FileExistsError, match="not empty"):
        init_project(tmp_path / "p")
