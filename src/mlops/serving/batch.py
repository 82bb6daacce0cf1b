"""Batch scoring: a table scored row by row through ``/predict``'s own checks and session (S3 to S3, one shard).

Every row goes through :func:`mlops.serving.service.checked_outputs`, the function ``/predict`` answers with: a row
``/predict`` would refuse is written with the message ``/predict`` gives for it (rows are numbered by their position
in the input object, as ``/predict`` numbers the records of a request) and the other rows are scored. The table is
read and written with DuckDB (CSV, Parquet or JSON Lines in; Parquet out), the rows handed over as the records a
request would carry. Columns that are not the model's inputs (a label, a key) are carried through, not refused.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlops.core.ports import ArtifactStore, MetadataStore
from mlops.monitoring.capture import Answered
from mlops.serving.onnx_model import OnnxModel
from mlops.serving.service import (
    LISTED_PROBLEMS,
    FieldProblem,
    LoadedModel,
    as_answered,
    checked_outputs,
    load_version,
    problem_message,
)

OK, ERROR = "ok", "error"
PREDICTION, STATUS, ERROR_COLUMN, VERSION = "prediction", "status", "error", "model_version"
PROBABILITY = "probability_"  # one column per class: probability_<class>
NUMERIC_TYPE = re.compile(r"^(DOUBLE|FLOAT|REAL|DECIMAL|BIGINT|INTEGER|SMALLINT|TINYINT|HUGEINT|U)")
CHUNK_ROWS = 10_000  # rows checked and scored at once: a bounded share of the function's memory
_PINNED: dict[tuple[str, int], LoadedModel] = {}


def pinned_model(meta: MetadataStore, artifacts: ArtifactStore, name: str, version: int) -> LoadedModel:
    """The version a job pinned, loaded once per execution environment (one at a time: a new job's version
    replaces the last one's in memory). A version's artifacts never change, so there is nothing to re-check."""
    key = (name, version)
    if key not in _PINNED:
        _PINNED.clear()
        _PINNED[key] = load_version(meta, artifacts, name, version)
    return _PINNED[key]


@dataclass
class ScoredRows:
    """A chunk's answers, one per row: the prediction (None for a bad row), the class probabilities ((n, classes),
    NaN for a bad row; None for a regressor), each row's error (None if scored), and the scored rows as capture
    records them."""

    predictions: list[Any]
    probabilities: Any
    errors: list[str | None]
    answered: Answered | None
    scored: list[int] = field(default_factory=list)  # positions of the scored rows (the capture's order)


def score_records(model: OnnxModel, records: list[dict[str, Any]], first_row: int = 0) -> ScoredRows:
    """Score ``records`` as ``/predict`` would, row by row: a row with a problem gets ``/predict``'s message for it
    (``first_row``: the position of ``records[0]`` in its input), the others their answers. A batch with problems
    is checked again without the bad rows (only a valid batch is scored), at most once per kind of problem."""
    n = len(records)
    errors: list[str | None] = [None] * n
    index = list(range(n))
    subset = records
    checked = None
    while subset:
        problems, checked = checked_outputs(model, subset)
        if checked is not None:
            break
        by_row: dict[int, list[FieldProblem]] = defaultdict(list)
        for p in problems:
            by_row[p.row].append(FieldProblem(first_row + index[p.row], p.field, p.problem))
        for row, found in by_row.items():
            errors[index[row]] = problem_message("record", found, LISTED_PROBLEMS)
        index = [i for j, i in enumerate(index) if j not in by_row]
        subset = [records[i] for i in index]
    predictions: list[Any] = [None] * n
    probabilities = np.full((n, len(model.class_names)), np.nan) if model.is_classifier else None
    if checked is None:
        return ScoredRows(predictions, probabilities, errors, None, [])
    for i, p in zip(index, checked.predictions, strict=True):
        predictions[i] = p
    if probabilities is not None and checked.probabilities is not None:
        probabilities[index] = checked.probabilities
    return ScoredRows(predictions, probabilities, errors, as_answered(model, subset, checked), index)


@dataclass(frozen=True)
class TableScore:
    rows_in: int  # the input object's rows in this shard's range
    rows_out: int  # rows written to the part
    errors: int  # rows written with an error
    total_rows: int  # the input object's rows (every shard of one object must agree)
    first_row: int
    captured: list[Answered] = field(default_factory=list)


def _reader(fmt: str) -> str:
    return {
        "csv": "read_csv(?, header = true)",
        "parquet": "read_parquet(?)",
        "jsonl": "read_json(?, format = 'newline_delimited')",
    }[fmt]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def score_table(
    model: OnnxModel,
    version: int,
    source: Path,
    fmt: str,
    target: Path,
    *,
    shard: int = 0,
    shards: int = 1,
    capture_sample: float = 0.0,
    seed: int = 0,
    memory_limit: str = "512MB",
    temp_dir: str | None = None,
) -> TableScore:
    """Score rows [n·shard/shards, n·(shard+1)/shards) of the table at ``source`` (``fmt``) into the Parquet file
    ``target``: the input's columns, then ``prediction``, ``probability_<class>`` (classifiers), ``model_version``,
    ``status`` (``ok`` | ``error``) and ``error`` (``/predict``'s message for that row), in the input's order.
    ``capture_sample``: the share of scored rows kept for the monitor (drawn with ``seed``)."""
    import duckdb

    con = duckdb.connect(config={"memory_limit": memory_limit, **({"temp_directory": temp_dir} if temp_dir else {})})
    try:
        con.execute(f"CREATE TABLE input AS SELECT * FROM {_reader(fmt)}", [str(source)])
        columns = {str(name): str(kind) for name, kind, *_ in con.execute("DESCRIBE input").fetchall()}
        clash = sorted(
            c for c in columns if c in (PREDICTION, STATUS, ERROR_COLUMN, VERSION) or c.startswith(PROBABILITY)
        )
        if clash:
            raise ValueError(f"the input has column(s) {clash}, which the scored output adds; rename them")
        (total,) = con.execute("SELECT count(*) FROM input").fetchone() or (0,)
        first, stop = total * shard // shards, total * (shard + 1) // shards
        fed, select, raw = _features(model, columns)
        query = (
            f"SELECT rowid AS __row, {', '.join([*select, *raw.values()]) or 'NULL'} FROM input "
            "WHERE rowid >= ? AND rowid < ? ORDER BY rowid"
        )
        rng = np.random.default_rng(seed)
        rows, predictions, errors, captured = [], [], [], []
        probabilities: list[Any] = []
        for start in range(first, stop, CHUNK_ROWS):
            # Columns as numpy arrays, then as Python lists (C loops): a row's values are what a JSON request would
            # carry (a NULL, masked, becomes None), zipped into the records /predict takes.
            arrays = con.execute(query, [start, min(start + CHUNK_ROWS, stop)]).fetchnumpy()
            values = [arrays[k].tolist() for k in arrays]
            chunk = values[0]
            records = [dict(zip(fed, row, strict=True)) for row in zip(*values[1 : len(fed) + 1], strict=True)]
            for j, name in enumerate(raw):  # a value that is not a number: /predict sees what was sent
                for record, text in zip(records, values[len(fed) + 1 + j], strict=True):
                    if text is not None:
                        record[name] = text
            scored = score_records(model, records, first_row=int(chunk[0]))
            rows += chunk
            predictions += scored.predictions
            errors += scored.errors
            if scored.probabilities is not None:
                probabilities.append(scored.probabilities)
            if scored.answered is not None and capture_sample > 0:
                keep = np.flatnonzero(rng.random(len(scored.scored)) < capture_sample)
                if len(keep):
                    captured.append(_subset(scored.answered, keep))
        # Typed arrays where the values allow (DuckDB scans a numpy object array value by value): the answers of the
        # rows scored, and the errors beside them in a table of their own (few rows), joined back.
        ok = np.array([e is None for e in errors], dtype=bool)
        out: dict[str, Any] = {"__row": np.asarray(rows, dtype=np.int64), "__ok": ok}
        out[PREDICTION] = _column(predictions) if model.is_classifier else _floats(predictions)
        if model.is_classifier:
            matrix = np.vstack(probabilities) if probabilities else np.zeros((0, len(model.class_names)))
            for k, name in enumerate(model.class_names):
                out[f"{PROBABILITY}{name}"] = matrix[:, k]
        bad_rows = np.flatnonzero(~ok)
        problems = {
            "__row": out["__row"][bad_rows],
            ERROR_COLUMN: np.array([errors[i] for i in bad_rows] or [""], dtype=object)[: len(bad_rows)],
        }
        con.register("scores", out)
        con.register("problems", problems)
        answers = [c for c in out if not c.startswith("__")]
        added = ", ".join(f"CASE WHEN s.__ok THEN s.{_quoted(c)} END AS {_quoted(c)}" for c in answers)
        con.execute(
            f"COPY (SELECT i.*, {added}, {int(version)}::BIGINT AS {VERSION}, "
            f"CASE WHEN s.__ok THEN '{OK}' ELSE '{ERROR}' END AS {STATUS}, p.{ERROR_COLUMN} "
            "FROM input i JOIN scores s ON i.rowid = s.__row LEFT JOIN problems p ON p.__row = s.__row "
            "ORDER BY s.__row) "
            f"TO '{_sql_path(target)}' (FORMAT parquet, COMPRESSION zstd)"
        )
        (written,) = con.execute("SELECT count(*) FROM read_parquet(?)", [str(target)]).fetchone() or (0,)
    finally:
        con.close()
    bad = sum(e is not None for e in errors)
    return TableScore(stop - first, int(written), bad, int(total), int(first), captured)


def _features(model: OnnxModel, columns: dict[str, str]) -> tuple[list[str], list[str], dict[str, str]]:
    """The record fields a row gives (the model's inputs the table has, and its id column), their SELECT
    expressions, and for each numeric input stored as text, the expression of its value where it is not a
    number (``/predict`` names it: "expected a number, got str"). A missing input column is left out of the
    records, and ``/predict``'s "missing field" names it on every row."""
    sig = model.signature
    fed, select, raw = [], [], {}
    for spec in sig.inputs:
        name = spec["name"]
        if name not in columns:
            continue
        q = _quoted(name)
        fed.append(name)
        if spec["type"] == "numeric":
            select.append(f"TRY_CAST({q} AS DOUBLE)")
            if not re.match(r"^(DOUBLE|FLOAT|REAL|DECIMAL|BIGINT|INTEGER|SMALLINT|TINYINT|HUGEINT|U)", columns[name]):
                raw[name] = (
                    f"CASE WHEN {q} IS NOT NULL AND TRY_CAST({q} AS DOUBLE) IS NULL THEN CAST({q} AS VARCHAR) END"
                )
        else:
            select.append(f"CAST({q} AS VARCHAR)")
    if sig.id_column and sig.id_column in columns:
        fed.append(sig.id_column)
        select.append(_quoted(sig.id_column))
    return fed, select, raw


def _column(values: list[Any]) -> Any:
    """Class labels as a typed array when they are all integers (a bad row's, None, becomes 0: masked by status)."""
    present = {type(v) for v in values if v is not None}
    if present <= {int}:
        return np.array([0 if v is None else v for v in values], dtype=np.int64)
    return np.array(values, dtype=object)


def _floats(values: list[Any]) -> Any:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _subset(answered: Answered, keep: Any) -> Answered:
    """The rows ``keep`` of a capture."""
    picked = keep.tolist()
    return Answered(
        numeric=answered.numeric,
        numbers=None if answered.numbers is None else np.ascontiguousarray(answered.numbers[keep]),
        text={name: [values[i] for i in picked] for name, values in answered.text.items()},
        predictions=[answered.predictions[i] for i in picked],
        probabilities=None if answered.probabilities is None else answered.probabilities[keep],
        classes=answered.classes,
        ids=None if answered.ids is None else [answered.ids[i] for i in picked],
    )


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
