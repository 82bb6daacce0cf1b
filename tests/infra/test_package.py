"""The wheel a project installs carries the whole platform: the package, its CDK app, handlers and layer recipe
(links into the repository's top-level folders here), the templates and the starter project."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from mlops.tools.samples import REPOSITORY

pytestmark = [pytest.mark.infra, pytest.mark.slow]


def test_given_the_built_wheel_then_it_holds_the_cdk_app_the_handlers_the_layer_recipe_and_the_starter(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path), str(REPOSITORY)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("serverless_mlops-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    handlers = {p.parent.name for p in (REPOSITORY / "functions").glob("*/handler.py")}
    assert {f"mlops/functions/{h}/handler.py" for h in handlers} <= names
    assert {"mlops/infra/app.py", "mlops/infra/stacks/pipeline.py", "mlops/layers/build.py"} <= names
    assert {
        f"mlops/layers/requirements/{b}.txt" for b in ("base", "data", "train", "export", "serving", "scoring")
    } <= names
    assert {"mlops/starter/cdk.json", "mlops/starter/components/features.py", "mlops/starter/scripts/demo"} <= names
    assert {"mlops/starter/.github/workflows/ci.yml", "mlops/templates/site_run.html.j2", "mlops/py.typed"} <= names
    assert {"mlops/tools/prices.json", "mlops/tools/measured_costs.json"} <= names  # what `mlops cost` reads
    assert not [n for n in names if "/.build/" in n or "__pycache__" in n or n.startswith(("tests/", "infra/"))]
