"""prepare's splits in SQL: each labelled row's split decided by a hash of its key, the split files written by
DuckDB's ``COPY`` in bounded memory.

A row's place is a function of the row, not of where it sits in the snapshot: its key (``id_column`` when the
config names one, else its whole content) hashed with the split seed orders the rows of each class, and each
class's first rows in that order go to test, the next to validation, the rest to train. The same rows give the
same splits however they were ordered or cut into objects. How many rows of each class each split takes is
:func:`mlops.ml.split.approximate_mode`'s allocation of ``split.test`` and ``split.validation`` (classes in
proportion, stratified as before); a regression target, or a class too small to stratify, orders all rows as one.
With a ``time_column`` the rows are ordered by time instead (the hash breaking ties): train is the oldest share,
test the newest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import ceil
from pathlib import Path
from typing import Any

import numpy as np

from mlops.core.config import ProjectConfig, Task
from mlops.data.engine import EngineLimits, connect, parquet_source, quote
from mlops.data.stats import sql_task

SPLITS = ("train", "validation", "test")
# Each class needs this many rows for a stratified split (fewer: the rows are split as one, unstratified).
MIN_STRATIFIED = 3
# Columns the engine adds while it splits; dropped from the files it writes.
_KEY, _ROW, _RANK, _SPLIT = "__mlops_key", "__mlops_row", "__mlops_rank", "__mlops_split"


@dataclass(frozen=True)
class Splits:
    """What :func:`write_splits` wrote: the task, the classes (None for regression), each split's row count and
    file (None where it holds no row: nothing is written when a split would be empty)."""

    task: Task
    classes: list[Any] | None
    labelled: int
    rows: dict[str, int]
    files: dict[str, Path] | None


def split_sizes(n_samples: int, test_size: float) -> tuple[int, int]:
    """(train rows, test rows) for a fraction ``test_size`` of ``n_samples``: the test side is rounded up."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size={test_size} should be a fraction in (0, 1)")
    n_test = ceil(test_size * n_samples)
    n_train = n_samples - n_test
    if n_train <= 0:
        raise ValueError(f"{n_samples} rows with test_size={test_size} leave no training rows")
    return n_train, n_test


def approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """The most likely count per class when drawing ``n_draws`` rows without replacement (floors, then the largest
    remainders; ties broken by ``rng``)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def _literal(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _quotas(counts: Mapping[Any, int], config: ProjectConfig) -> dict[Any, tuple[int, int]]:
    """(test rows, validation rows) of each class (or of the one group ``None``): split.test of all rows rounded
    up, then split.validation of the rest, each allocated over the classes as scikit-learn's stratified split
    allocates it (:func:`approximate_mode`, ties broken by the seed)."""
    split = config.split
    labels = list(counts)
    n = np.asarray([counts[k] for k in labels])
    _, n_test = split_sizes(int(n.sum()), split.test)
    rel_val = split.validation / (split.train + split.validation)
    _, n_val = split_sizes(int(n.sum()) - n_test, rel_val)
    if len(labels) == 1:
        return {labels[0]: (n_test, n_val)}
    rng = np.random.RandomState(split.seed)
    test = approximate_mode(n, n_test, rng)
    val = approximate_mode(n - test, n_val, rng)
    return {k: (int(t), int(v)) for k, t, v in zip(labels, test, val, strict=True)}


def write_splits(
    path: str | Path, out_dir: str | Path, config: ProjectConfig, limits: EngineLimits | None = None
) -> Splits:
    """Split the labelled rows of the Parquet file ``path`` into ``out_dir``/{train,validation,test}.parquet, each
    file's rows in their hash order (so the same rows give the same bytes), within ``limits``. Too few rows to
    fill every split: nothing is written (``files`` None), for the step to name the problem."""
    source = parquet_source([str(path)])
    target = config.target
    y = quote(target)
    out = Path(out_dir)
    with connect(limits or EngineLimits.for_function()) as con:
        types = {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        sql_type = types[target]
        labelled = f"{y} IS NOT NULL" + (" AND NOT isnan(" + y + ")" if sql_type in ("FLOAT", "DOUBLE") else "")
        task = config.task or sql_task(con, f"(SELECT * FROM {source} WHERE {labelled})", target, sql_type)
        counts = {
            value: int(n)
            for value, n in con.execute(
                f"SELECT {y}, count(*) FROM {source} WHERE {labelled} GROUP BY {y} ORDER BY {y}"
            ).fetchall()
        }
        total = sum(counts.values())
        classes = sorted(counts) if task is not Task.REGRESSION else None
        seed = _literal(f"{config.split.seed}:")
        key = quote(config.id_column) if config.id_column else "t"
        hashed = f"md5({seed} || {key}::VARCHAR) AS {_KEY}, md5(t::VARCHAR) AS {_ROW}"
        if config.time_column:
            a = round(total * config.split.train)
            b = round(total * (config.split.train + config.split.validation))
            rows = {"train": a, "validation": b - a, "test": total - b}
            order = f"ORDER BY {quote(config.time_column)} ASC NULLS LAST, {_KEY}, {_ROW}"
            place = f"CASE WHEN {_RANK} < {a} THEN 'train' WHEN {_RANK} < {b} THEN 'validation' ELSE 'test' END"
            ranked = f"SELECT *, row_number() OVER ({order}) - 1 AS {_RANK} FROM hashed"
        else:
            stratify = task is not Task.REGRESSION and min(counts.values(), default=0) >= MIN_STRATIFIED
            groups = counts if stratify else {None: total}
            try:
                quotas = _quotas(groups, config)
            except ValueError:  # too few rows to leave any for training
                return Splits(task, classes, total, dict.fromkeys(SPLITS, 0), None)
            rows = {
                "train": total - sum(t + v for t, v in quotas.values()),
                "validation": sum(v for _, v in quotas.values()),
                "test": sum(t for t, _ in quotas.values()),
            }
            if stratify:
                con.execute(f"CREATE TEMP TABLE quotas (label {sql_type}, t BIGINT, v BIGINT)")
                con.executemany("INSERT INTO quotas VALUES (?, ?, ?)", [(k, t, v) for k, (t, v) in quotas.items()])
                ranked = (
                    f"SELECT h.*, row_number() OVER (PARTITION BY h.{y} ORDER BY {_KEY}, {_ROW}) - 1 AS {_RANK}, "
                    f"q.t AS __mlops_t, q.v AS __mlops_v FROM hashed h JOIN quotas q ON h.{y} = q.label"
                )
            else:
                ((t, v),) = quotas.values()
                ranked = (
                    f"SELECT *, row_number() OVER (ORDER BY {_KEY}, {_ROW}) - 1 AS {_RANK}, {t} AS __mlops_t, "
                    f"{v} AS __mlops_v FROM hashed"
                )
            place = (
                f"CASE WHEN {_RANK} < __mlops_t THEN 'test' WHEN {_RANK} < __mlops_t + __mlops_v THEN 'validation' "
                "ELSE 'train' END"
            )
        if min(rows.values()) == 0:
            return Splits(task, classes, total, rows, None)
        con.execute(
            f"CREATE TEMP TABLE placed AS WITH hashed AS (SELECT *, {hashed} FROM {source} t WHERE {labelled}), "
            f"ranked AS ({ranked}) SELECT *, {place} AS {_SPLIT} FROM ranked"
        )
        added = ", ".join([_KEY, _ROW, _RANK, _SPLIT] + ([] if config.time_column else ["__mlops_t", "__mlops_v"]))
        files: dict[str, Path] = {}
        for name in SPLITS:
            files[name] = out / f"{name}.parquet"
            con.execute(
                f"COPY (SELECT * EXCLUDE ({added}) FROM placed WHERE {_SPLIT} = '{name}' ORDER BY {_KEY}, {_ROW}) "
                f"TO {_literal(files[name])} (FORMAT parquet, COMPRESSION snappy)"
            )
    return Splits(task, classes, total, rows, files)
