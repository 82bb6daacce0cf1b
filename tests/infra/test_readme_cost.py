"""The README's cost figures are what ``mlops cost`` computes for the same environments: the synthesized stacks (the
session's dev and prod syntheses), the committed measurements and the dated price table. A stack change that adds
an alarm, a price or a measurement that moves, fails here until the README is rewritten from the command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlops.tools.cost import estimate, inventory, load_measured, load_prices, money, render

pytestmark = pytest.mark.infra

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
FIX = "run `mlops cost -e {env}` and put its figures in README.md's Cost section"


def stated(env: str) -> dict[str, str]:
    """The README's row for ``env`` in the cost table: idle, runs (by model), 1,000 predictions."""
    row = re.search(rf"^\| `{env}` \| (\$[\d.,]+) \| ([^|]+) \| (\$[\d.,]+) \|$", README, flags=re.M)
    assert row is not None, f"the README's cost table has no row for {env}"
    runs = dict((m, d) for d, m in re.findall(r"(\$[\d.,]+) \(([\w-]+)\)", row.group(2)))
    return {"idle": row.group(1), "per_1000_predictions": row.group(3), **{f"run {m}": d for m, d in runs.items()}}


def computed(synth: object, env: str) -> tuple[dict[str, str], str]:
    prices = load_prices()
    e = estimate(inventory(synth.templates, env, prices.hours_per_month), load_measured(), prices)  # type: ignore[attr-defined]
    figures = {"idle": money(e.idle), "per_1000_predictions": money(e.per_1000_predictions)}
    figures.update({f"run {m}": money(d) for m, d in e.per_run.items()})
    return figures, render(e)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_given_the_readmes_cost_table_then_each_figure_is_what_mlops_cost_computes(env, synth, prod_synth):
    figures, _ = computed(synth if env == "dev" else prod_synth, env)
    said = stated(env)
    assert said == figures, f"the README says {said}, mlops cost computes {figures}: " + FIX.format(env=env)


def test_given_the_readmes_cost_output_then_it_is_what_mlops_cost_prints_for_dev(synth):
    _, printed = computed(synth, "dev")
    block = re.search(r"What\s+`mlops cost -e dev` prints:\n\n```\n(.*?)\n```", README, flags=re.S)
    assert block is not None and block.group(1) == printed, FIX.format(env="dev")


def test_given_a_synthesized_assembly_when_mlops_cost_reads_it_then_it_prints_the_same_estimate_as_json(synth):
    from typer.testing import CliRunner

    from mlops.tools.cli import app

    out = CliRunner().invoke(
        app, ["cost", "-e", "dev", "--cdk-out", str(synth.outdir), "--predictions-per-month", "1000000", "--json"]
    )
    assert out.exit_code == 0, out.output
    printed = json.loads(out.output)
    figures, _ = computed(synth, "dev")
    assert money(printed["idle_per_month"]) == figures["idle"] and printed["month"]["predictions"] == 1_000_000
    assert printed["month"]["total"] > printed["idle_per_month"]
    refused = CliRunner().invoke(app, ["cost", "--cdk-out", str(synth.outdir), "--region", "mars-east-1"])
    assert refused.exit_code == 1 and "eu-west-1" in refused.output
