"""The model signature embedded in the ONNX file's metadata (no onnxruntime needed to build one)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SIGNATURE_KEY = "mlops_signature"


@dataclass(frozen=True)
class Signature:
    """What the model expects and answers; embedded in the ONNX file's metadata."""

    task: str
    target: str
    inputs: list[dict[str, Any]]  # [{"name", "type": numeric|categorical, "domain"?, "min"?, "max"?}]
    classes: list[Any] | None

    @classmethod
    def from_json(cls, raw: str | dict[str, Any]) -> Signature:
        d = json.loads(raw) if isinstance(raw, str) else raw
        return cls(task=d["task"], target=d["target"], inputs=d["inputs"], classes=d.get("classes"))

    def to_json(self) -> str:
        return json.dumps(
            {"task": self.task, "target": self.target, "inputs": self.inputs, "classes": self.classes},
            sort_keys=True,
        )
