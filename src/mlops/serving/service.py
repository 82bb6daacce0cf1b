"""The champion, kept warm: found through the registry alias, loaded from S3, re-checked every N seconds.

A model that fails to load never replaces the last good one; the failure is logged and counted.
Requests are checked against the model's own input signature before anything reaches onnxruntime.
"""

from __future__ import annotations

import itertools
import logging
import math
import operator
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops.core.artifact_io import get_verified
from mlops.core.config import UnknownModelError
from mlops.core.constants import CHALLENGER, CHAMPION
from mlops.core.ports import ArtifactStore, MetadataStore
from mlops.monitoring import capture
from mlops.serving.onnx_model import OnnxModel
from mlops.serving.signature import RANGE_SLACK, value_bounds

log = logging.getLogger(__name__)


class NoModelError(RuntimeError):
    """No champion is registered yet (or none could ever be loaded)."""


@dataclass
class LoadedModel:
    version: int
    model: OnnxModel
    record: dict[str, Any]
    loaded_at: float
    size_bytes: int = 0  # the ONNX file: what the session holds in memory is of this order
    alias: dict[str, Any] = field(default_factory=dict)  # what the alias carries (a challenger's mode, percent)


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

    def _stale(self, now: float) -> bool:
        # No champion yet: look on every request (the first one serves at once). No challenger: a normal state,
        # re-checked on the interval like any alias — not a read per request.
        missing = self._current is None and self.alias == CHAMPION
        return missing or now - self._checked_at >= self.ttl_seconds

    def get(self) -> LoadedModel:
        loaded = self.current()
        if loaded is None:
            raise NoModelError(f"no {self.alias} model is available for '{self.model_name}' yet")
        return loaded

    def current(self) -> LoadedModel | None:
        """The loaded model, or None (a challenger not set is a normal state: no exception per request)."""
        now = self.clock()
        if self._stale(now):
            with self._lock:
                if self._stale(now):
                    self._refresh(now)
        return self._current

    def _refresh(self, now: float) -> None:
        self._checked_at = now
        item = self.meta.get_alias_item(self.model_name, self.alias)
        if item is None:
            if self.alias != CHAMPION:  # a challenger withdrawn: nothing answers for it any more
                self._current = None
            return  # a champion is never unset: keep the last one
        version = int(item["version"])
        if self._current is not None and self._current.version == version:
            self._current.alias = item  # same model; its mode or share may have changed
            return
        if self._failed.get(version, -math.inf) > now - self.ttl_seconds * 10:
            return  # failed recently: keep serving the last good model, retry later
        try:
            record = self.meta.get_model_version(self.model_name, version)
            if record is None:
                raise LookupError(f"{self.alias} points at v{version}, which is not registered")
            onnx = get_verified(self.artifacts, record["artifacts"]["onnx"])
            model = OnnxModel(onnx)
        except Exception as err:  # noqa: BLE001 — no model load may take the function down: cached as failed, logged
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
        self._current = LoadedModel(version, model, record, now, len(onnx), item)

    @property
    def size_bytes(self) -> int:
        return self._current.size_bytes if self._current is not None else 0


def load_version(meta: MetadataStore, artifacts: ArtifactStore, name: str, version: int) -> LoadedModel:
    """One registered version of ``name``, loaded as the serve function loads its champion (its ONNX file checked
    against the sha256 the registry recorded): what a batch scoring job pins."""
    record = meta.get_model_version(name, version)
    if record is None:
        raise LookupError(f"model '{name}' has no version {version}")
    onnx = get_verified(artifacts, record["artifacts"]["onnx"])
    return LoadedModel(version, OnnxModel(onnx), record, time.monotonic(), len(onnx))


@dataclass
class ServingModels:
    """One :class:`ModelCache` per model, each with its own alias re-check, within a memory bound: when the
    loaded models outgrow ``budget_bytes``, the least recently used are dropped (and reloaded on their next
    request). The model just asked for always stays."""

    names: list[str]
    factory: Callable[[str, str], ModelCache]  # (model, alias) → its cache
    budget_bytes: int = 256 * 1024 * 1024
    _caches: OrderedDict[str, ModelCache] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: dict[str, LoadedModel] = field(default_factory=dict)  # what each cache answered last
    evictions: int = 0

    def get(self, name: str, alias: str = CHAMPION) -> LoadedModel:
        key, cache = self._cache(name, alias)
        return self._seen_now(key, cache.get())

    def challenger(self, name: str) -> LoadedModel | None:
        """The model's challenger (canary or shadow), if one is set and loads (none set is the usual state: no
        exception raised and caught per request)."""
        key, cache = self._cache(name, CHALLENGER)
        loaded = cache.current()
        return None if loaded is None else self._seen_now(key, loaded)

    def _cache(self, name: str, alias: str) -> tuple[str, ModelCache]:
        if name not in self.names:
            raise UnknownModelError(name, self.names)
        key = name if alias == CHAMPION else f"{name}#{alias}"
        with self._lock:
            cache = self._caches.get(key)
            if cache is None:
                cache = self._caches[key] = self.factory(name, alias)
            self._caches.move_to_end(key)
        return key, cache

    def _seen_now(self, key: str, loaded: LoadedModel) -> LoadedModel:
        if self._seen.get(key) is not loaded:  # a model (re)loaded: the memory bound may be crossed
            self._seen[key] = loaded
            self._evict(keep=key)
        return loaded

    def only(self) -> str | None:
        return self.names[0] if len(self.names) == 1 else None

    @property
    def loaded(self) -> list[str]:
        """Models in memory, least recently used first."""
        return [n for n, c in self._caches.items() if c.size_bytes]

    def _evict(self, keep: str) -> None:
        with self._lock:
            while sum(c.size_bytes for c in self._caches.values()) > self.budget_bytes:
                victim = next((n for n in self._caches if n != keep), None)
                if victim is None:
                    return
                del self._caches[victim]
                self._seen.pop(victim, None)
                self.evictions += 1
                log.info("model cache over %d bytes: unloaded '%s' (least recently used)", self.budget_bytes, victim)


# -- request checking against the signature ---------------------------------------------
@dataclass
class FieldProblem:
    row: int
    field: str
    problem: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "problem": self.problem}


LISTED_PROBLEMS = 50  # problems listed in one answer's errors (a batch can have thousands)


def as_answered(model: OnnxModel, records: list[dict[str, Any]], checked: Checked) -> capture.Answered:
    """Scored records as capture records them (:class:`mlops.monitoring.capture.Answered`): whole columns."""
    id_column = model.signature.id_column
    feeds = checked.feeds
    return capture.Answered(
        numeric=model.numeric_names,
        numbers=checked.numbers,
        text={s["name"]: feeds[s.get("input", s["name"])].ravel().tolist() for s in model.categorical_specs},
        predictions=checked.predictions,
        probabilities=checked.probabilities,
        classes=model.class_names,
        ids=[record.get(id_column) for record in records] if id_column else None,
    )


def problem_message(what: str, problems: list[FieldProblem], listed: int) -> str:
    """The message of a 400 for records (or labels) with ``problems``: the first named, and where the others are
    (``listed``: how many the answer's ``errors`` holds). A batch scoring job writes it beside each bad row."""
    first = problems[0]
    field = f", field '{first.field}'" if first.field else ""
    if len(problems) == 1:
        more = ""
    elif len(problems) <= listed:
        more = f" (and {len(problems) - 1} more: errors lists all {len(problems)})"
    else:
        more = f" (and {len(problems) - 1} more: errors lists the first {listed})"
    return f"{what} {first.row}{field}: {first.problem}{more}"


_NUMBER_TYPES = (int, float)
_NUMERIC_OK = frozenset({int, float, type(None)})  # JSON numbers and null (bool is not a number here)
_CATEGORY_OK = frozenset({str, type(None)})


def check_records(
    model: OnnxModel, records: list[dict[str, Any]]
) -> tuple[list[FieldProblem], list[str], dict[str, Any], Any]:
    """Problems that make a request invalid (4xx) — every one in the batch, not just the first kind —
    warnings that do not, the ONNX feeds, and the numeric inputs as one (n, k) float32 array in the order of
    ``model.numeric_specs`` (NaN for a missing value; None without numeric inputs): the feeds' own matrix, which
    capture records.

    As in training: ``null`` (or NaN) is a missing value, imputed inside the graph; a category never seen in
    training is accepted and ignored by the encoder (reported as a warning); numbers must be finite and fit
    the model's float32 inputs. The signature's id column may be sent: it is echoed back, never fed.
    A valid batch costs a few C-level passes: the values are gathered per column by ``itemgetter``, their
    types checked as a set, and the numbers converted and bounded as one array; only a batch with a problem
    takes the per-value path that names each one.
    """
    id_column = model.signature.id_column
    problems, rows, checked = _shape_problems(records, model.input_names, {id_column} if id_column else None)
    feeds: dict[str, Any] = {}
    warnings: list[str] = []
    numbers = None
    if model.numeric_specs and checked:
        values = _numeric_matrix(checked, model, rows, problems)
        if values is not None:
            numbers = values.astype(np.float32)  # what the graph's inputs take
            # Column j as an (n, 1) view, one per input: iterating the transposed matrix makes the views in C
            # (30 Python slices cost more than the whole check at one row).
            feeds.update(zip(model.numeric_inputs, numbers.T[:, :, np.newaxis], strict=True))
    for spec in model.categorical_specs:
        feeds[spec.get("input", spec["name"])] = _categorical_feed(spec, checked, rows, problems, warnings)
    if id_column:
        problems += _id_problems(records, rows, id_column)
    if problems:
        return sorted(problems, key=lambda p: (p.row, p.field)), [], {}, None
    return problems, warnings, feeds, numbers


@dataclass
class Checked:
    """Records that passed :func:`check_records` and were scored: what the answer and the capture are made of."""

    warnings: list[str]
    feeds: dict[str, Any]
    numbers: Any  # the numeric inputs as fed (see check_records)
    predictions: list[Any]
    probabilities: Any  # (n, classes) float64, or None for a regressor


def checked_outputs(model: OnnxModel, records: list[dict[str, Any]]) -> tuple[list[FieldProblem], Checked | None]:
    """``records`` checked against the model's signature and scored: the problems that make them unanswerable
    (every bad value named; then, once they are valid, the records whose output is undefined), or the answers.
    ``/predict`` refuses a request with a problem (a 400 naming each); a batch scoring job marks those rows and
    scores the rest. One path for both."""
    problems, warnings, feeds, numbers = check_records(model, records)
    if problems:
        return problems, None
    predictions, probabilities, flagged = model.outputs(feeds)
    undefined = undefined_outputs(model, records, flagged) if flagged else []
    if undefined:
        return undefined, None
    return [], Checked(warnings, feeds, numbers, predictions, probabilities)


def _shape_problems(
    records: list[dict[str, Any]], expected: frozenset[str], optional: set[str] | None
) -> tuple[list[FieldProblem], list[int], list[dict[str, Any]]]:
    """Records that are not objects or whose fields are not the model's; the rows that are objects, and those
    records with exactly the model's fields, whose values are checked next. A record with an unknown or a
    missing field has its other values checked too (the missing ones as null, no second problem), so one answer
    names every problem of the record."""
    if set(map(type, records)) == {dict}:
        accepted = (expected, expected | optional) if optional else (expected,)
        if all(k in accepted for k in map(dict.keys, records)):
            return [], list(range(len(records))), records  # the usual case: every record has the model's fields
    optional = optional or set()
    problems: list[FieldProblem] = []
    rows: list[int] = []
    checked: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(FieldProblem(i, "", "each record must be a JSON object"))
            continue
        keys = record.keys()
        extra, missing = keys - expected - optional, expected - keys
        problems += [FieldProblem(i, n, "unknown field; the model has no such input") for n in sorted(extra)]
        problems += [FieldProblem(i, n, "missing field (send null for a missing value)") for n in sorted(missing)]
        rows.append(i)
        checked.append({n: record.get(n) for n in expected | (keys & optional)} if extra or missing else record)
    return problems, rows, checked


def _categorical_feed(
    spec: dict[str, Any],
    checked: list[dict[str, Any]],
    rows: list[int],
    problems: list[FieldProblem],
    warnings: list[str],
) -> Any:
    """One categorical input as strings (null: the empty string, imputed in the graph); a non-scalar value is a
    problem, a category unseen in training a warning."""
    name = spec["name"]
    column = list(map(operator.itemgetter(name), checked))
    if set(map(type, column)) <= _CATEGORY_OK:
        strings = [v if v is not None else "" for v in column]
    else:
        for i, v in zip(rows, column, strict=True):
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
    return np.array(strings, dtype=object).reshape(-1, 1)


def _id_problems(records: list[dict[str, Any]], rows: list[int], id_column: str) -> list[FieldProblem]:
    out = []
    for i in rows:
        ident = records[i].get(id_column)
        if (ident is not None and not isinstance(ident, str | int | float)) or isinstance(ident, bool):
            out.append(FieldProblem(i, id_column, "an id must be a string or a number"))
    return out


def _numeric_matrix(
    checked: list[dict[str, Any]], model: OnnxModel, rows: list[int], problems: list[FieldProblem]
) -> Any:
    """The numeric inputs as one float64 array (each within float32's range), or None after appending a problem
    for every bad value."""
    numeric = model.numeric_specs
    matrix = list(map(model.numeric_getter, checked))  # one tuple of the numeric values per record
    if set(map(type, itertools.chain.from_iterable(matrix))) <= _NUMERIC_OK:
        try:  # null and NaN are missing values (imputed in the graph, as in training): None becomes NaN here
            values = np.array(matrix, dtype=np.float64)
        except OverflowError:  # an integer beyond any float: find which
            values = None
        if values is not None:
            # The bounds are finite (within float32's), so an infinity falls outside them; NaN (missing) compares
            # False both ways and passes, as it should.
            bad = values < model.numeric_low
            bad |= values > model.numeric_high
            if not bad.any():
                return values
            for i, j in zip(*np.nonzero(bad), strict=True):
                problems.append(FieldProblem(rows[int(i)], numeric[j]["name"], _out_of_bounds(numeric[j])))
            return None
    for i, row in enumerate(matrix):
        for spec, v in zip(numeric, row, strict=True):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, _NUMBER_TYPES):
                problems.append(FieldProblem(rows[i], spec["name"], f"expected a number, got {type(v).__name__}"))
                continue
            try:
                number = float(v)
            except OverflowError:
                problems.append(FieldProblem(rows[i], spec["name"], _out_of_bounds(spec)))
                continue
            lowest, highest = value_bounds(spec)
            if not math.isnan(number) and (math.isinf(number) or not lowest <= number <= highest):
                problems.append(FieldProblem(rows[i], spec["name"], _out_of_bounds(spec)))
    return None


OUT_OF_FLOAT32 = "must be a finite number within float32 range (±3.4e38)"


def _out_of_bounds(spec: dict[str, Any]) -> str:
    if spec.get("min") is None or spec.get("max") is None:
        return OUT_OF_FLOAT32
    low, high = value_bounds(spec)
    return (
        f"must be a finite number within [{low:.6g}, {high:.6g}]: more than {RANGE_SLACK:g} training ranges "
        f"outside [{spec['min']:g}, {spec['max']:g}] is a unit or data error"
    )


def undefined_outputs(model: OnnxModel, records: list[dict[str, Any]], undefined: list[int]) -> list[FieldProblem]:
    """Records the model cannot score (``undefined``: the rows whose prediction or probabilities are not finite,
    found on the output arrays): values so far outside the training range that the graph overflows. Each is named
    by its most extreme field, measured in training ranges."""
    problems = []
    for i in undefined:
        worst, field = 0.0, ""
        for spec in model.numeric_specs:
            v, lo, hi = records[i].get(spec["name"]), spec.get("min"), spec.get("max")
            if not isinstance(v, int | float) or lo is None or hi is None:
                continue
            span = max(float(hi) - float(lo), 1e-12)
            distance = max(float(v) - float(hi), float(lo) - float(v)) / span
            if distance > worst:
                worst, field = distance, spec["name"]
        shown = (
            f"{records[i].get(field)!r} is {worst:.3g} training ranges outside what it was trained on" if field else ""
        )
        problems.append(
            FieldProblem(i, field, f"the model's output is undefined for this record: {shown or 'values out of range'}")
        )
    return problems


def check_labels(model: OnnxModel, labels: list[dict[str, Any]]) -> tuple[list[FieldProblem], list[dict[str, Any]]]:
    """D2: ground-truth labels for earlier predictions — every problem named, or the labels as stored.

    Each label names its prediction by ``request_id`` (and ``row`` within that request, default 0) or by
    ``id`` (the model's id column), not both; the label must be one of the model's classes (classification)
    or a finite number (regression)."""
    sig = model.signature
    problems: list[FieldProblem] = []
    clean: list[dict[str, Any]] = []
    classes = {str(c): c for c in sig.classes or []}
    for i, item in enumerate(labels):
        by_request, by_id = item.get("request_id") is not None, item.get("id") is not None
        if by_request == by_id:
            problems.append(
                FieldProblem(i, "request_id", "name the prediction by request_id (and row) or by id, not both/neither")
            )
            continue
        if by_id and not sig.id_column:
            problems.append(FieldProblem(i, "id", "this model has no id_column; label predictions by request_id"))
            continue
        if by_request and item.get("row") is None:
            item = {**item, "row": 0}
        value = item.get("label")
        if sig.task == "regression":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
                problems.append(FieldProblem(i, "label", f"expected a finite number, got {value!r}"))
                continue
            label: Any = float(value)
        else:
            # 1.0 names class 1 (a CSV reader's number); True names no class
            names = [str(value)] + ([str(int(value))] if isinstance(value, float) and value.is_integer() else [])
            known = next((n for n in names if n in classes), None)
            if isinstance(value, bool) or known is None:
                shown = ", ".join(sorted(classes))
                problems.append(FieldProblem(i, "label", f"{value!r} is not one of the model's classes [{shown}]"))
                continue
            label = classes[known]
        clean.append({k: v for k, v in {**item, "label": label}.items() if v is not None})
    return problems, clean
