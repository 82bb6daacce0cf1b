"""The model signature embedded in the ONNX file's metadata (no onnxruntime needed to build one)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SIGNATURE_KEY = "mlops_signature"
# The feature components' probe graph (mlops.ml.features.probe_graph): its inputs and output columns.
PROBE_KEY = "mlops.probe"
FLOAT32_MAX = 3.4e38  # numeric inputs are float32 in the graph
# How far outside its training range (in multiples of that range) a numeric value may be: beyond it a value is
# a unit or data error, and the graph's arithmetic may overflow (undefined output). Refused with a named 400.
RANGE_SLACK = 1000.0


def value_bounds(spec: dict[str, Any]) -> tuple[float, float]:
    """The numeric values this input accepts: its training range widened by RANGE_SLACK, within float32."""
    lo, hi = spec.get("min"), spec.get("max")
    if lo is None or hi is None:
        return -FLOAT32_MAX, FLOAT32_MAX
    span = max(float(hi) - float(lo), abs(float(hi)), 1.0)
    return max(-FLOAT32_MAX, float(lo) - RANGE_SLACK * span), min(FLOAT32_MAX, float(hi) + RANGE_SLACK * span)


@dataclass(frozen=True)
class Signature:
    """What the model expects and answers; embedded in the ONNX file's metadata."""

    task: str
    target: str
    inputs: list[dict[str, Any]]  # [{"name", "type": numeric|categorical, "domain"?, "min"?, "max"?}]
    classes: list[Any] | None
    id_column: str | None = None  # a record may carry it; it is echoed back, never fed to the model

    @classmethod
    def from_json(cls, raw: str | dict[str, Any]) -> Signature:
        d = json.loads(raw) if isinstance(raw, str) else raw
        return cls(
            task=d["task"],
            target=d["target"],
            inputs=d["inputs"],
            classes=d.get("classes"),
            id_column=d.get("id_column"),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "task": self.task,
                "target": self.target,
                "inputs": self.inputs,
                "classes": self.classes,
                "id_column": self.id_column,
            },
            sort_keys=True,
        )

    def record_schema(self) -> dict[str, Any]:
        """JSON Schema of one record this model answers (null = a missing value, imputed in the graph)."""
        properties: dict[str, Any] = {}
        for spec in self.inputs:
            if spec["type"] == "numeric":
                low, high = value_bounds(spec)
                prop: dict[str, Any] = {"type": ["number", "null"], "minimum": low, "maximum": high}
                if spec.get("min") is not None and spec.get("max") is not None:
                    prop["description"] = (
                        f"numeric; seen in training within [{spec['min']:g}, {spec['max']:g}]; values more than "
                        f"{RANGE_SLACK:g} training ranges outside it are refused"
                    )
            else:
                prop = {"type": ["string", "null"], "description": "categorical; an unseen value is accepted"}
                if spec.get("domain"):
                    prop["examples"] = list(spec["domain"][:10])
            properties[spec["name"]] = prop
        if self.id_column:
            properties[self.id_column] = {"type": ["string", "number"], "description": "echoed back as `id`"}
        return {
            "type": "object",
            "properties": properties,
            "required": [s["name"] for s in self.inputs],
            "additionalProperties": False,
        }
