"""Load an exported model and answer predictions from plain Python records."""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort

from mlops.serving.signature import SIGNATURE_KEY, Signature, value_bounds


class OnnxModel:
    """An onnxruntime session plus the signature that maps records onto its inputs."""

    def __init__(self, model_bytes: bytes, signature: Signature | None = None) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
        if signature is None:
            meta = self.session.get_modelmeta().custom_metadata_map
            if SIGNATURE_KEY not in meta:
                raise ValueError("the ONNX model carries no mlops signature")
            signature = Signature.from_json(meta[SIGNATURE_KEY])
        self.signature = signature
        # Per model rather than per request: the input names, the numeric inputs, a getter that takes their values
        # out of a record as one tuple (in C), and their accepted bounds.
        self.input_names = frozenset(spec["name"] for spec in signature.inputs)
        self.numeric_specs = [spec for spec in signature.inputs if spec["type"] == "numeric"]
        self.numeric_inputs = [spec.get("input", spec["name"]) for spec in self.numeric_specs]
        self.categorical_specs = [spec for spec in signature.inputs if spec["type"] != "numeric"]
        names = [spec["name"] for spec in self.numeric_specs]
        self.numeric_names = names
        self.numeric_getter: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            operator.itemgetter(*names) if len(names) > 1 else lambda record: (record[names[0]],)
        )
        bounds = [value_bounds(spec) for spec in self.numeric_specs]
        self.numeric_low = np.array([b[0] for b in bounds], dtype=np.float64)
        self.numeric_high = np.array([b[1] for b in bounds], dtype=np.float64)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.class_names = [str(c) for c in (signature.classes or [])]
        self._session_run = _checked_run(self.session, {spec.get("input", spec["name"]) for spec in signature.inputs})
        self.size = len(model_bytes)

    @property
    def is_classifier(self) -> bool:
        return self.signature.task != "regression"

    def feeds(self, columns: dict[str, list[Any]]) -> dict[str, np.ndarray]:
        """Columns of plain values → one (n, 1) array per ONNX input (missing → NaN / "")."""
        out: dict[str, np.ndarray] = {}
        for spec in self.signature.inputs:
            values = columns.get(spec["name"], [])
            if spec["type"] == "numeric":
                arr = np.array([np.nan if v is None else v for v in values], dtype=np.float32)
            else:
                arr = np.array(["" if v is None else str(v) for v in values], dtype=object)
            out[spec.get("input", spec["name"])] = arr.reshape(-1, 1)
        return out

    def feeds_from_records(self, records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        names = [s["name"] for s in self.signature.inputs]
        return self.feeds({n: [r.get(n) for r in records] for n in names})

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, probabilities or None)."""
        outputs = self._session_run(feeds)
        if self.is_classifier:
            return np.asarray(outputs[0]).ravel(), np.asarray(outputs[1])
        return np.asarray(outputs[0]).ravel().astype(float), None

    def predict_records(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.predict_columns(self.feeds_from_records(records))

    def predict_columns(self, feeds: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        return self.score(feeds)[0]

    def score(self, feeds: dict[str, np.ndarray]) -> tuple[list[dict[str, Any]], list[int]]:
        """Rows of {"prediction", "probabilities"} — built from whole arrays, not value by value — and the rows
        whose output is undefined (a prediction or probability that is not finite)."""
        predictions, probabilities, bad = self.outputs(feeds)
        return self.rows(predictions, probabilities), bad

    def outputs(self, feeds: dict[str, np.ndarray]) -> tuple[list[Any], np.ndarray | None, list[int]]:
        """The predictions (plain values; an undefined one is None), the probabilities as answered (float64,
        rounded to 6 places; None for a regressor) and the rows whose output is undefined."""
        labels, proba = self.run(feeds)
        bad: list[int] = []
        if not (
            (labels.dtype.kind != "f" or np.isfinite(labels).all()) and (proba is None or np.isfinite(proba).all())
        ):
            undefined = ~np.isfinite(labels) if labels.dtype.kind == "f" else np.zeros(len(labels), dtype=bool)
            if proba is not None:
                undefined |= ~np.isfinite(proba).all(axis=1)
            bad = np.flatnonzero(undefined).tolist()
        predictions = [_plain(v) for v in labels.tolist()] if labels.dtype.kind == "f" else labels.tolist()
        return predictions, None if proba is None else proba.astype(np.float64).round(6), bad

    def rows(self, predictions: list[Any], probabilities: np.ndarray | None) -> list[dict[str, Any]]:
        """The answer's rows: {"prediction"} and, for a classifier, {"probabilities": {class: p}}."""
        if probabilities is None:
            return [{"prediction": p} for p in predictions]
        names = self.class_names
        return [
            {"prediction": p, "probabilities": dict(zip(names, row, strict=False))}
            for p, row in zip(predictions, probabilities.tolist(), strict=True)
        ]


def _checked_run(session: ort.InferenceSession, fed: set[str]) -> Callable[[dict[str, np.ndarray]], list[Any]]:
    """``session.run`` for feeds named ``fed`` (the signature's inputs: every request's feeds have exactly these
    names). onnxruntime's Python ``run`` checks on every call that the feeds hold each required input, by comparing
    each of the graph's inputs against a list of the feed names: at one row and 30 inputs that was a third of the
    session's time. The names cannot change for the model's life, so the check is made here once, and the
    session's own ``run`` is called without it (the graph still refuses a feed of the wrong type or shape). A
    model whose signature misses a required input, or an onnxruntime without that inner session, keeps the
    checked ``run`` and its error naming what is missing."""
    outputs = [o.name for o in session.get_outputs()]
    required = {i.name for i in session.get_inputs() if not i.type.startswith("optional")}
    inner = getattr(session, "_sess", None)
    if inner is None or not required <= fed:
        return lambda feeds: session.run(outputs, feeds)
    run = inner.run
    return lambda feeds: run(outputs, feeds, None)


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def single_row_latency_ms(model: OnnxModel, record: dict[str, Any], repeats: int = 200) -> dict[str, float]:
    """p50/p99 of one-row predictions through the same path the serving handler uses."""
    for _ in range(10):
        model.predict_records([record])
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict_records([record])
        samples.append((time.perf_counter() - t0) * 1000)
    arr = np.asarray(samples)
    return {"p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99))}
