"""The champion, kept warm: found through the registry alias, loaded from S3, re-checked every N seconds.

A model that fails to load never replaces the last good one; the failure is logged and counted.
Requests are checked against the model's own input signature before anything reaches onnxruntime.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops.adapters.artifacts import ArtifactStore
from mlops.adapters.metadata import MetadataStore
from mlops.constants import CHAMPION
from mlops.serving.onnx_model import OnnxModel

log = logging.getLogger(__name__)


class NoModelError(RuntimeError):
    """No champion is registered yet (or none could ever be loaded)."""


@dataclass
class LoadedModel:
    version: int
    model: OnnxModel
    record: dict[str, Any]
    loaded_at: float


@dataclass
class ModelCache:
    meta: MetadataStore
    artifacts: ArtifactStore
    model_name: str
    ttl_seconds: float = 30.0
    alias: str = CHAMPION
    on_load_failure: Callable[[int, Exception], None] | None = None
    clock: Callable[[], float] = time.monotonic
    _current: LoadedModel | None = None
    _checked_at: float = -math.inf
    _failed: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> LoadedModel:
        now = self.clock()
        if self._current is None or now - self._checked_at >= self.ttl_seconds:
            with self._lock:
                if self._current is None or now - self._checked_at >= self.ttl_seconds:
                    self._refresh(now)
        if self._current is None:
            raise NoModelError(f"no {self.alias} model is available for '{self.model_name}' yet")
        return self._current

    def _refresh(self, now: float) -> None:
        self._checked_at = now
        version = self.meta.get_alias(self.model_name, self.alias)
        if version is None or (self._current is not None and self._current.version == version):
            return
        if self._failed.get(version, -math.inf) > now - self.ttl_seconds * 10:
            return  # failed recently: keep serving the last good model, retry later
        try:
            record = self.meta.get_model_version(self.model_name, version)
            if record is None:
                raise LookupError(f"{self.alias} points at v{version}, which is not registered")
            model = OnnxModel(self.artifacts.get_bytes(record["artifacts"]["onnx"]["uri"]))
        except Exception as err:
            self._failed[version] = now
            log.error(
                "model v%s failed to load; still serving v%s: %s",
                version,
                self._current.version if self._current else None,
                err,
            )
            if self.on_load_failure:
                self.on_load_failure(version, err)
            return
        self._current = LoadedModel(version, model, record, now)


# -- request checking against the signature ---------------------------------------------
@dataclass
class FieldProblem:
    row: int
    field: str
    problem: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "problem": self.problem}


def check_records(model: OnnxModel, records: list[dict[str, Any]]) -> tuple[list[FieldProblem], list[str]]:
    """Problems that make a request invalid (4xx), and warnings that do not.

    As in training: ``null`` is a missing value (imputed inside the graph); a category never seen in
    training is accepted and ignored by the encoder (reported as a warning); numbers must be finite.
    """
    specs = {s["name"]: s for s in model.signature.inputs}
    problems: list[FieldProblem] = []
    unseen: dict[str, set[str]] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(FieldProblem(i, "", "each record must be a JSON object"))
            continue
        for name in record.keys() - specs.keys():
            problems.append(FieldProblem(i, name, "unknown field; the model has no such input"))
        for name, spec in specs.items():
            if name not in record:
                problems.append(FieldProblem(i, name, "missing field (send null for a missing value)"))
                continue
            value = record[name]
            if value is None:
                continue
            if spec["type"] == "numeric":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    problems.append(FieldProblem(i, name, f"expected a number, got {type(value).__name__}"))
                elif not math.isfinite(value):
                    problems.append(FieldProblem(i, name, "must be a finite number"))
                elif abs(value) > 3.4e38:
                    problems.append(FieldProblem(i, name, "out of float32 range"))
            else:
                if not isinstance(value, str | int | float | bool):
                    problems.append(FieldProblem(i, name, f"expected a string, got {type(value).__name__}"))
                elif spec.get("domain") and str(value) not in spec["domain"]:
                    unseen.setdefault(name, set()).add(str(value))
    warnings = [
        f"{name}: value(s) {sorted(values)[:5]} not seen in training; treated as an unknown category"
        for name, values in sorted(unseen.items())
    ]
    return problems, warnings
