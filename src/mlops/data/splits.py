"""prepare's splits in SQL: each labelled row's split decided by a hash of its key, the split files written by
DuckDB's ``COPY`` in bounded memory.

A row's place is a function of the row, not of where it sits in the snapshot: its key (``id_column`` when the
config names one, else its whole content) hashed with the split seed orders the rows of each class (a second hash,
of the whole row, breaking ties), and each class's first rows in that order go to test, the next to validation,
the rest to train. The same rows give the same splits however they were ordered or cut into objects.

Nothing ranks every row. A narrow window over the two 64-bit hashes alone finds, per class, the row at each split's
boundary; each row is then placed by comparing its hashes with its class's two boundaries, and each split file is
sorted once, on the hashes. Rows tied with a boundary are the same row (equal key and equal whole-row hash), so
which of them fall before it is immaterial and only their count is set. The hashes are DuckDB's ``hash``: fixed-width
and ~10 times cheaper than an ``md5`` of the row cast to text (whose cast alone took 3 s per million rows), and pinned
by ``tests/unit/test_splits_sql.py`` so that an upgrade of DuckDB that changed them, and so every split, is seen.

How many rows of each class each split takes is
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
_KEY, _ROW, _SPLIT = "__mlops_key", "__mlops_row", "__mlops_split"


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


def _before(columns: list[str], bound: tuple[Any, ...]) -> tuple[str, list[Any]]:
    """SQL true where the row's ``columns`` sort strictly before ``bound`` (lexicographically), and its
    parameters. A ``None`` in ``bound`` follows a ``(... IS NULL)`` column, which has already told nulls apart:
    the null column itself is then left out of the comparison."""
    parts = [(c, v) for c, v in zip(columns, bound, strict=True) if v is not None]
    sql = "FALSE"
    params: list[Any] = []
    for column, value in reversed(parts):
        sql = f"({column} < ? OR ({column} = ? AND {sql}))"
        params = [value, value, *params]
    return sql, params


def _equal(columns: list[str], bound: tuple[Any, ...]) -> tuple[str, list[Any]]:
    parts = [(c, v) for c, v in zip(columns, bound, strict=True) if v is not None]
    return " AND ".join(f"{c} = ?" for c, _ in parts) or "TRUE", [v for _, v in parts]


# Each sample and the split it is part of.
SAMPLES = {"train_sample": "train", "validation_sample": "validation", "test_sample": "test"}


def _sample_sizes(counts: Mapping[Any, int], total: int, seed: int) -> dict[Any, int]:
    """``total`` rows allocated over the groups of ``counts`` in proportion (stratified, as the splits are)."""
    labels = list(counts)
    n = np.asarray([counts[k] for k in labels])
    if len(labels) == 1 or total >= n.sum():
        return {k: min(int(c), total) if len(labels) == 1 else int(c) for k, c in zip(labels, n, strict=True)}
    got = approximate_mode(n, total, np.random.RandomState(seed))
    return {k: int(c) for k, c in zip(labels, got, strict=True)}


def _segments(
    quotas: Mapping[Any, tuple[int, int]],
    train_of: Mapping[Any, int],
    s_train: Mapping[Any, int],
    s_val: Mapping[Any, int],
    s_test: Mapping[Any, int],
    *,
    by_time: bool,
) -> dict[Any, list[tuple[str, int]]]:
    """Each group's rows in split order cut into (name, rows) segments: the test sample, the rest of test, the
    validation sample, the rest of validation, the training sample, the rest of training — by time the other way
    round (oldest first: training's sample its newest rows, validation's its oldest, test's its newest)."""
    segments: dict[Any, list[tuple[str, int]]] = {}
    for g, (t, v) in quotas.items():
        st, sv, stt = s_train.get(g, 0), s_val.get(g, 0), s_test.get(g, 0)
        if by_time:
            segments[g] = [
                ("train", train_of[g] - st),
                ("train_sample", st),
                ("validation_sample", sv),
                ("validation", v - sv),
                ("test", t - stt),
                ("test_sample", stt),
            ]
        else:
            segments[g] = [
                ("test_sample", stt),
                ("test", t - stt),
                ("validation_sample", sv),
                ("validation", v - sv),
                ("train_sample", st),
                ("train", train_of[g] - st),
            ]
    return segments


def write_splits(
    path: str | Path,
    out_dir: str | Path,
    config: ProjectConfig,
    limits: EngineLimits | None = None,
    *,
    sample_rows: int | None = None,
) -> Splits:
    """Split the labelled rows of the Parquet file ``path`` into ``out_dir``/{train,validation,test}.parquet, each
    file's rows in their hash order (so the same rows give the same bytes), within ``limits``. Too few rows to
    fill every split: nothing is written (``files`` None), for the step to name the problem.

    With ``sample_rows`` below the training rows, ``train_sample.parquet`` holds that many of them, stratified (the
    first of each class in the split's order; by time, the newest), and ``validation_sample.parquet`` and
    ``test_sample.parquet`` validation and test rows in the same proportion: what trials fit and score when the whole
    split is refit elsewhere, and what evaluate scores (a test split of that size would not fit its Lambda either)."""
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
        hashed = f"hash({seed}, {key}) AS {_KEY}, hash(t, {seed}) AS {_ROW}"
        # Each group's rows in split order, cut into segments: (name, rows) in that order.
        order = [_KEY, _ROW]
        if config.time_column:
            time = quote(config.time_column)
            order = [f"({time} IS NULL)", time, _KEY, _ROW]
            a = round(total * config.split.train)
            b = round(total * (config.split.train + config.split.validation))
            rows = {"train": a, "validation": b - a, "test": total - b}
            group, quotas = "NULL", {None: (total - b, b - a)}
        else:
            stratify = task is not Task.REGRESSION and min(counts.values(), default=0) >= MIN_STRATIFIED
            try:
                quotas = _quotas(counts if stratify else {None: total}, config)
            except ValueError:  # too few rows to leave any for training
                return Splits(task, classes, total, dict.fromkeys(SPLITS, 0), None)
            rows = {
                "train": total - sum(t + v for t, v in quotas.values()),
                "validation": sum(v for _, v in quotas.values()),
                "test": sum(t for t, _ in quotas.values()),
            }
            group = y if stratify else "NULL"
        if min(rows.values()) == 0:
            return Splits(task, classes, total, rows, None)
        sizes = {g: counts[g] if g is not None else total for g in quotas}
        train_of = {g: sizes[g] - t - v for g, (t, v) in quotas.items()}
        sampled = sample_rows is not None and rows["train"] > sample_rows
        share = (sample_rows or 0) / rows["train"]
        s_train = _sample_sizes(train_of, sample_rows or 0, config.split.seed) if sampled else {}
        s_val = (
            _sample_sizes({g: v for g, (_, v) in quotas.items()}, round(rows["validation"] * share), config.split.seed)
            if sampled
            else {}
        )
        s_test = (
            _sample_sizes({g: t for g, (t, _) in quotas.items()}, round(rows["test"] * share), config.split.seed)
            if sampled
            else {}
        )
        segments = _segments(quotas, train_of, s_train, s_val, s_test, by_time=bool(config.time_column))
        rows_hashed = f"(SELECT *, {hashed} FROM {source} t WHERE {labelled})"
        # The boundary rows: each group's row at each boundary rank, and how many of its group sort before it.
        bounds = {g: list(np.cumsum([n for _, n in segs])[:-1]) for g, segs in segments.items()}
        con.execute(f"CREATE TEMP TABLE wanted (g {sql_type}, r BIGINT)")
        con.executemany(
            "INSERT INTO wanted VALUES (?, ?)", sorted({(g, int(r)) for g, ranks in bounds.items() for r in ranks})
        )
        keys = ", ".join(order)
        found = {
            (g, int(r)): (tuple(bound), int(less))
            for g, r, less, *bound in con.execute(
                f"SELECT n.g, n.r, n.less, {', '.join(f'n.c{i}' for i in range(len(order)))} FROM ("
                f"SELECT {group} AS g, row_number() OVER w - 1 AS r, rank() OVER w - 1 AS less, "
                + ", ".join(f"{c} AS c{i}" for i, c in enumerate(order))
                + f" FROM {rows_hashed} WINDOW w AS (PARTITION BY {group} ORDER BY {keys})) n "
                "JOIN wanted ON n.g IS NOT DISTINCT FROM wanted.g AND n.r = wanted.r"
            ).fetchall()
        }
        # Each row's segment: the first whose end it sorts before, else the group's last.
        cases: list[str] = []
        params: list[Any] = []
        ties: list[tuple[str, list[Any], str, int]] = []
        for g, segs in segments.items():
            in_group = "TRUE" if g is None else f"{y} = ?"
            group_params: list[Any] = [] if g is None else [g]
            for (name, _), rank in zip(segs[:-1], bounds[g], strict=True):
                if (g, int(rank)) not in found:  # the end is past the group's last row: all of it is before
                    cases.append(f"WHEN {in_group} THEN '{name}'")
                    params += group_params
                    continue
                bound, less = found[(g, int(rank))]
                sql, sql_params = _before(order, bound)
                cases.append(f"WHEN {in_group} AND {sql} THEN '{name}'")
                params += group_params + sql_params
                # Copies of the boundary row that belong before it: their number set after placing, the later
                # boundaries' first, so that where one row's copies straddle several, the earlier share wins.
                if rank > less:
                    eq, eq_params = _equal(order, bound)
                    ties.append((f"{in_group} AND {eq}", group_params + eq_params, name, int(rank) - less))
            cases.append(f"WHEN {in_group} THEN '{segs[-1][0]}'")
            params += group_params
        place = f"CASE {' '.join(cases)} END"
        con.execute(f"CREATE TEMP TABLE placed AS SELECT *, {place} AS {_SPLIT} FROM {rows_hashed}", params)
        for where, where_params, name, before in reversed(ties):
            con.execute(
                f"UPDATE placed SET {_SPLIT} = '{name}' WHERE rowid IN "
                f"(SELECT rowid FROM placed WHERE {where} ORDER BY rowid LIMIT {before})",
                where_params,
            )
        files: dict[str, Path] = {}
        for name in SPLITS + (tuple(SAMPLES) if sampled else ()):
            files[name] = out / f"{name}.parquet"
            parts = [name] + [sample for sample, whole in SAMPLES.items() if whole == name]
            within = ", ".join(f"'{p}'" for p in parts)
            con.execute(
                f"COPY (SELECT * EXCLUDE ({_KEY}, {_ROW}, {_SPLIT}) FROM placed WHERE {_SPLIT} IN ({within}) "
                f"ORDER BY {_KEY}, {_ROW}) TO {_literal(files[name])} (FORMAT parquet, COMPRESSION snappy)"
            )
        if sampled:
            rows |= {
                "train_sample": sum(s_train.values()),
                "validation_sample": sum(s_val.values()),
                "test_sample": sum(s_test.values()),
            }
    return Splits(task, classes, total, rows, files)
