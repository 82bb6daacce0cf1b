"""What CI and a fresh install ask of the machine: the Node the CDK CLI supports, a browser test that cannot
quietly not run, and an install without warnings of our own making."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CI = (ROOT / ".github" / "workflows" / "ci.yml").read_text()


def test_given_ci_and_the_readme_then_both_ask_for_node_22():
    """The pinned CDK CLI warns that Node 20 is unsupported."""
    versions = re.findall(r'node-version: "(\d+)"', CI)
    assert versions and all(int(v) >= 22 for v in versions), versions
    readme = (ROOT / "README.md").read_text()
    assert re.findall(r"Node (\d+)", readme) and all(int(v) >= 22 for v in re.findall(r"Node (\d+)", readme))


def test_given_the_browser_step_in_ci_then_a_missing_browser_fails_it_rather_than_skipping():
    step = CI[CI.index("the report site in Chromium") :]
    assert "|| true" not in step
    assert 'MLOPS_REQUIRE_BROWSER: "1"' in step
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "export MLOPS_REQUIRE_BROWSER=1" in ci_run


def test_given_the_browser_is_required_when_it_is_missing_then_the_browser_tests_fail(monkeypatch):
    from tests.browser.test_site import unavailable

    monkeypatch.delenv("MLOPS_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception):
        unavailable("Chromium is not installed")
    monkeypatch.setenv("MLOPS_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="MLOPS_REQUIRE_BROWSER=1"):
        unavailable("Chromium is not installed")


def test_given_the_project_metadata_then_installing_it_warns_of_nothing_of_ours():
    """pip warned 'moto … does not provide the extra lambda' and setuptools that a license table is deprecated."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(project["project"]["license"], str)
    extras = set(metadata("moto").get_all("Provides-Extra") or [])
    for requirement in project["project"]["optional-dependencies"]["dev"]:
        wanted = re.match(r"moto\[([^\]]+)\]", requirement)
        if wanted:
            assert set(wanted.group(1).split(",")) <= extras, set(wanted.group(1).split(",")) - extras
