"""A project: the folder that holds a deployment's ``cdk.json`` (its environments and their models), the models'
YAML files, the project's own ``components/`` package and its sample data — this repository (its bundled models),
or one made by ``mlops init``. The platform (its CDK app, handlers and layers) comes from the installed package;
everything the user owns comes from here."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ENV = "MLOPS_PROJECT"
STATE_DIR = ".mlops"


class ProjectNotFoundError(FileNotFoundError):
    """No ``cdk.json`` here or above: not inside a project."""


@dataclass(frozen=True)
class Project:
    root: Path

    @classmethod
    def find(cls, start: Path | str | None = None) -> Project:
        """The project ``MLOPS_PROJECT`` names, else the nearest folder at or above ``start`` (the working directory)
        that holds a ``cdk.json``."""
        named = os.environ.get(PROJECT_ENV)
        if named:
            root = Path(named).resolve()
            if not (root / "cdk.json").is_file():
                raise ProjectNotFoundError(f"{PROJECT_ENV}={named} holds no cdk.json")
            return cls(root)
        here = Path(start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / "cdk.json").is_file():
                return cls(folder)
        raise ProjectNotFoundError(
            f"no cdk.json in {here} or above: run this inside a project (make one with `mlops init DIR`), or set "
            f"{PROJECT_ENV}"
        )

    @property
    def cdk_json(self) -> dict[str, Any]:
        return dict(json.loads((self.root / "cdk.json").read_text()))

    def context(self) -> dict[str, Any]:
        """``cdk.json``'s context, as ``cdk synth`` gives it to the app."""
        return dict(self.cdk_json.get("context", {}))

    def environments(self) -> dict[str, Any]:
        environments = self.context().get("environments")
        if not isinstance(environments, dict):
            raise ValueError(f"{self.root / 'cdk.json'}: context.environments is missing")
        return environments

    def model_paths(self, env: str = "dev") -> list[Path]:
        """The model files (or folders of them) environment ``env`` deploys, as paths."""
        environments = self.environments()
        if env not in environments:
            raise ValueError(
                f"unknown environment '{env}' in {self.root / 'cdk.json'}; choose one of {sorted(environments)}"
            )
        return [self.path(m) for m in environments[env]["models"]]

    def feature_set_paths(self, env: str = "dev") -> list[Path]:
        """The feature set files (or folders of them) environment ``env`` deploys (none when it lists none)."""
        self.model_paths(env)  # an unknown environment fails as it does for the models
        return [self.path(f) for f in self.environments()[env].get("feature_sets", [])]

    def path(self, relative: str | Path) -> Path:
        return (self.root / relative).resolve()

    @property
    def components(self) -> Path | None:
        """The project's own components package (``components/``), if it has one."""
        folder = self.root / "components"
        return folder if (folder / "__init__.py").is_file() else None

    @property
    def state_dir(self) -> Path:
        """Where offline state and build caches live (``.mlops/``)."""
        return self.root / STATE_DIR
