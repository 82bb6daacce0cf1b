"""The CLI's help speaks to its user: no internal work-item ids ("D2: …", "E4: …"), and a --version."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mlops import __version__
from mlops.tools.cli import app

pytestmark = pytest.mark.unit

INTERNAL_ID = re.compile(r"\b[A-E]\d{1,2}(?:[/-][A-E]?\d{1,2})*:")


def every_command(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Each command's path, groups included (a group has ``commands``; typer's click is its own)."""
    out = [path]
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            out += every_command(command, (*path, name))
        else:
            out.append((*path, name))
    return out


def test_given_every_command_then_its_help_shows_no_internal_ids():
    runner = CliRunner()
    paths = every_command(typer.main.get_command(app))
    assert ("feedback",) in paths and ("smoke",) in paths and ("runs", "watch") in paths
    for path in paths:
        out = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert out.exit_code == 0, (path, out.output)
        assert not INTERNAL_ID.search(out.output), (path, INTERNAL_ID.search(out.output), out.output)


def test_given_version_then_it_prints_the_package_version_and_exits_0():
    out = CliRunner().invoke(app, ["--version"])
    assert out.exit_code == 0, out.output
    assert out.output.strip() == f"serverless-mlops {__version__}"
