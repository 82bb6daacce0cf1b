"""The README's table of stacks names outputs a user looks up (``aws cloudformation describe-stacks``): each one
it names is an output of that stack as synthesized, ``<Model>`` standing for each model's part of the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlops.core.constants import model_output_key

pytestmark = pytest.mark.infra

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_outputs() -> dict[str, list[str]]:
    """Stack (``Storage``, ``Monitoring``, …) → the output names its row of the README's table gives."""
    found: dict[str, list[str]] = {}
    for line in README.read_text().splitlines():
        row = re.match(r"\| `Mlops-<env>-(\w+)`", line)
        said = re.search(r"outputs? ((?:`[^`]+`(?:, | and )?)+)", line)
        if row and said:
            found[row.group(1)] = re.findall(r"`([^`]+)`", said.group(1))
    return found


def test_given_the_readmes_stack_table_then_every_output_it_names_is_synthesized(synth):
    named = readme_outputs()
    assert {"Serving", "Monitoring"} <= set(named), named
    models = synth.settings.project().names
    for stack, names in named.items():
        outputs = set(synth.raw(stack.lower()).get("Outputs", {}))
        for name in names:
            if "<Model>" in name:
                keys = {model_output_key(name.replace("<Model>", ""), m) for m in models}
                assert keys <= outputs, (stack, name, sorted(outputs))
            else:
                assert name in outputs, (stack, name, sorted(outputs))
