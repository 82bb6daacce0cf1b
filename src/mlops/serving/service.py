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

import numpy as np

from mlops.adapters.artifacts import ArtifactStore, get_verified
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
            model = OnnxModel(get_verified(self.artifacts, record["artifacts"]["onnx"]))
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


_NUMBER_TYPES = (int, float)
FLOAT32_MAX = 3.4e38


def check_records(
    model: OnnxModel, records: list[dict[str, Any]]
) -> tuple[list[FieldProblem], list[str], dict[str, Any]]:
    """Problems that make a request invalid (4xx), warnings that do not, and the ONNX feeds.

    As in training: ``null`` (or NaN) is a missing value, imputed inside the graph; a category never seen in
    training is accepted and ignored by the encoder (reported as a warning); numbers must be finite.
    All numeric columns are checked and converted as one array, so a valid batch costs a few passes.
    """
    specs = model.signature.inputs
    expected = {s["name"] for s in specs}
    problems: list[FieldProblem] = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(FieldProblem(i, "", "each record must be a JSON object"))
        elif record.keys() != expected:
            for name in sorted(record.keys() - expected):
                problems.append(FieldProblem(i, name, "unknown field; the model has no such input"))
            for name in sorted(expected - record.keys()):
                problems.append(FieldProblem(i, name, "missing field (send null for a missing value)"))
    if problems:
        return problems, [], {}
    numeric = [s for s in specs if s["type"] == "numeric"]
    feeds: dict[str, Any] = {}
    warnings: list[str] = []
    if numeric:
        matrix: list[list[Any]] = [[r[s["name"]] for s in numeric] for r in records]
        flat = [v for row in matrix for v in row]
        if not all(type(v) in _NUMBER_TYPES or v is None for v in flat):
            for i, row in enumerate(matrix):
                for spec, v in zip(numeric, row, strict=True):
                    if v is not None and (isinstance(v, bool) or not isinstance(v, _NUMBER_TYPES)):
                        problems.append(FieldProblem(i, spec["name"], f"expected a number, got {type(v).__name__}"))
            return problems, [], {}
        # null and NaN are missing values (imputed in the graph, as in training); infinities are errors.
        values = np.array([math.nan if v is None else v for v in flat], dtype=np.float64).reshape(len(records), -1)
        with np.errstate(invalid="ignore"):
            bad = np.isinf(values) | (np.abs(values) > FLOAT32_MAX)
        if bad.any():
            for i, j in zip(*np.nonzero(bad), strict=True):
                problems.append(
                    FieldProblem(int(i), numeric[j]["name"], "must be a finite number within float32 range")
                )
            return problems, [], {}
        as32 = values.astype(np.float32)
        for j, spec in enumerate(numeric):
            feeds[spec.get("input", spec["name"])] = as32[:, j : j + 1]
    for spec in specs:
        if spec["type"] == "numeric":
            continue
        name = spec["name"]
        column = [r[name] for r in records]
        for i, v in enumerate(column):
            if v is not None and not isinstance(v, str | int | float | bool):
                problems.append(FieldProblem(i, name, f"expected a string, got {type(v).__name__}"))
        strings = ["" if v is None else str(v) for v in column]
        domain = spec.get("domain")
        if domain:
            unseen = set(strings) - set(domain) - {""}
            if unseen:
                warnings.append(
                    f"{name}: value(s) {sorted(unseen)[:5]} not seen in training; treated as an unknown category"
                )
        feeds[spec.get("input", name)] = np.array(strings, dtype=object).reshape(-1, 1)
    return problems, warnings, feeds
