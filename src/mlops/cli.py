"""The ``mlops`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops.config import ConfigError, example_config_path, load_config

app = typer.Typer(
    help="serverless-mlops: continuous training and serving on AWS serverless, offline too.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Check the project configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

EXAMPLE_CONFIG = example_config_path()
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Project config (YAML).")]


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def emit(obj: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(obj, indent=2, default=str))


@config_app.command("check")
def config_check(config: ConfigOpt = EXAMPLE_CONFIG, as_json: bool = typer.Option(False, "--json")) -> None:
    """Validate a config file; print the resolved values."""
    try:
        cfg = load_config(config)
    except ConfigError as err:
        fail(str(err))
        return
    if as_json:
        emit(cfg.model_dump(mode="json"), True)
    else:
        typer.echo(f"{config}: valid (model '{cfg.name}', config hash {cfg.config_hash()[:12]})")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where to write the demo report.")] = Path(".mlops/demo"),
    config: ConfigOpt = EXAMPLE_CONFIG,
) -> None:
    """The whole lifecycle offline: train a champion, reject bad data, judge a new candidate."""
    from mlops.demo import run_demo

    try:
        report = run_demo(load_config(config), out)
    except ConfigError as err:
        fail(str(err))
        return
    typer.secho(f"\nReport: {report.resolve()}", bold=True)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
