"""What the README tells a new user to type works as written: the files it names ship, the bodies it sends are
whole, and the rules it states are the code's."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from mlops.core.config import ProjectConfig
from mlops.tools.samples import bundled

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def commands(program: str) -> list[str]:
    """Every ``program …`` command in the README's bash blocks, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [line.split("  #")[0].strip() for line in lines if line.strip().startswith(program + " ")]


def test_given_the_readmes_curl_examples_then_each_body_is_whole_and_fits_its_model():
    """A body with a literal '…' is a 400 for anyone who pastes it."""
    curls = commands("curl")
    assert curls
    for command in curls:
        assert "…" not in command, command
        words = shlex.split(command)
        body = words[words.index("-d") + 1]
        model = re.search(r"/models/([a-z0-9-]+)/predict", command)
        assert model is not None, command
        if body.startswith("@"):
            body = (ROOT / body[1:]).read_text()
        records = json.loads(body)["records"]
        features = set(bundled(model.group(1)).columns) - {"target"}
        assert records and all(set(r) == features for r in records), command


def test_given_the_readmes_commands_then_every_file_they_read_ships():
    named = [
        word
        for command in commands("mlops")
        for word in shlex.split(command)
        if word.endswith((".yaml", ".json", ".csv")) and "/" in word and not word.startswith("s3://")
    ]
    assert any(w.endswith("-records.json") for w in named), named
    # a command about a project of one's own names its files as `mlops init` writes them
    from mlops.tools.samples import STARTER

    assert [w for w in named if not (ROOT / w).is_file() and not (STARTER / w).is_file()] == []
    checked = re.findall(r"`mlops config check -c ([^`]+)`", README)
    assert checked and all((ROOT / path).is_file() for path in checked), checked


def test_given_the_config_reference_then_the_model_name_pattern_is_the_codes():
    stated = re.search(r"\| `name` \| required \| model name \(`([^`]+)`", README)
    assert stated is not None
    (pattern,) = [m.pattern for m in ProjectConfig.model_fields["name"].metadata if hasattr(m, "pattern")]
    assert f"^{stated.group(1)}$" == pattern


def test_given_the_readmes_figures_then_they_are_what_the_commands_print(capsys):
    """Stale figures ('~15 Lambda invocations' per run, a serving bundle of 103.2 MB beside the table's 104.8,
    'about 70 seconds') came from nowhere a reader could re-run: each now quotes the line that prints it."""
    from mlops.tools.demo import say_usage

    class History:
        def get_execution_history(self, **request: object) -> dict:
            kinds = ["LambdaFunctionScheduled"] * 32 + ["TaskStateEntered"] * 39
            return {"events": [{"type": kind} for kind in kinds]}

    platform = type("P", (), {"client": lambda self, service: History()})()
    say_usage(platform, {"execution_arn": "arn"})
    printed = capsys.readouterr().out.strip()
    quoted = re.search(r"`(cost: [^`]+)`", README)
    assert quoted is not None and " ".join(quoted.group(1).split()) == printed
    assert "Lambda invocations in all`" in README  # the demo's last line, quoted where its duration is given
    assert "~15 Lambda" not in README and "About 70" not in README
    outside_the_table = [line for line in README.splitlines() if not line.startswith("|")]
    assert not [line for line in outside_the_table if re.search(r"\d+\.\d MB unzipped", line)]
