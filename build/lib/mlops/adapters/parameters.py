"""SSM Parameter Store: where a deployment publishes its model catalog and each model's config."""

from __future__ import annotations

from typing import Any

import boto3

GET_PARAMETERS_MAX = 10  # SSM GetParameters takes at most ten names per call


class SsmParameters:
    def __init__(self, client: Any = None) -> None:
        self._ssm = client if client is not None else boto3.session.Session().client("ssm")

    def get(self, name: str) -> str:
        return str(self._ssm.get_parameter(Name=name)["Parameter"]["Value"])

    def get_many(self, names: list[str]) -> dict[str, str]:
        values: dict[str, str] = {}
        for i in range(0, len(names), GET_PARAMETERS_MAX):
            for p in self._ssm.get_parameters(Names=names[i : i + GET_PARAMETERS_MAX])["Parameters"]:
                values[p["Name"]] = p["Value"]
        return values
