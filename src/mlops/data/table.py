"""The table the data checks read, as the few per-column aggregates they need: over a Parquet file in DuckDB
(the data steps, in bounded memory) or over a frame already in memory (the monitor's served records, in the
train bundle, which has no DuckDB).

Every check of :mod:`mlops.data.schema` is written once, against :class:`Table`; the two tables answer the same
questions the same way (``tests/unit/test_table.py`` holds them to it). A value's *text* is Python's ``str`` of
it (``True``, ``3``, ``"basic"``), as the schema's domains and the statistics' frequencies key values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mlops.core.config import FeatureType, Task
from mlops.data.engine import parquet_source, quote
from mlops.data.stats import (
    _FLOATS,
    _INTEGERS,
    _pandas_dtype,
    bin_counts,
    column_kind,
    sql_kind,
    task_of,
    text_counts,
    text_values,
)


@dataclass(frozen=True)
class NumericFacts:
    """What a numeric check needs of a column: its present values that are not numbers (count, the first three
    in row order), and of the values read as numbers (text parsed) their count, infinite ones, how many fall
    outside [lo, hi], and their min and max."""

    bad: int
    bad_examples: list[str]
    values: int
    infinite: int
    outside: int
    low: float | None
    high: float | None


@dataclass(frozen=True)
class TextFacts:
    """A column's present values (as text): how many, how many are numbers, and the first three that are not."""

    present: int
    numeric: int
    examples: list[str]


class Table(Protocol):
    @property
    def columns(self) -> list[str]: ...
    @property
    def rows(self) -> int: ...
    def kind(self, col: str) -> FeatureType: ...
    def dtype(self, col: str) -> str: ...
    def is_bool(self, col: str) -> bool: ...
    def is_number(self, col: str) -> bool: ...
    def missing(self, col: str) -> int: ...
    def distinct(self, col: str) -> int: ...
    def first_present(self, col: str) -> Any: ...
    def texts(self, col: str, limit: int | None = None) -> list[str] | None: ...
    def text_counts(self, col: str) -> dict[str, int]: ...
    def task(self, col: str) -> Task: ...
    def text_numbers(self, col: str) -> TextFacts: ...
    def numeric_facts(self, col: str, lo: float | None, hi: float | None) -> NumericFacts: ...
    def unseen(self, col: str, domain: Sequence[str]) -> tuple[int, int, list[str]]: ...
    def bins(self, col: str, edges: list[float]) -> tuple[int, list[int]]: ...
    def slice(self, start: int, stop: int) -> Table: ...


# -- a frame in memory -----------------------------------------------------------------------------------------
class FrameTable:
    """A :class:`Table` over a pandas frame (served records, tests, tools)."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df

    @property
    def columns(self) -> list[str]:
        return list(self.df.columns)

    @property
    def rows(self) -> int:
        return len(self.df)

    def kind(self, col: str) -> FeatureType:
        return column_kind(self.df[col])

    def dtype(self, col: str) -> str:
        return str(self.df[col].dtype)

    def is_bool(self, col: str) -> bool:
        return bool(pd.api.types.is_bool_dtype(self.df[col]))

    def is_number(self, col: str) -> bool:
        return bool(pd.api.types.is_numeric_dtype(self.df[col])) and not self.is_bool(col)

    def missing(self, col: str) -> int:
        return int(self.df[col].isna().sum())

    def distinct(self, col: str) -> int:
        return int(self.df[col].nunique())

    def first_present(self, col: str) -> Any:
        y = self.df[col].dropna()
        return y.iloc[0].item() if len(y) and isinstance(y.iloc[0], np.generic) else (y.iloc[0] if len(y) else None)

    def texts(self, col: str, limit: int | None = None) -> list[str] | None:
        found = text_values(self.df[col])
        return None if limit is not None and len(found) > limit else sorted(found)

    def text_counts(self, col: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in text_counts(self.df[col].dropna()).items()}

    def task(self, col: str) -> Task:
        values = self.df[col].dropna()
        return task_of(
            boolean=bool(pd.api.types.is_bool_dtype(values)),
            numeric=bool(pd.api.types.is_numeric_dtype(values)),
            fractional=bool(pd.api.types.is_float_dtype(values) and not np.all(np.mod(values.to_numpy(), 1) == 0)),
            distinct=int(values.nunique()),
        )

    def text_numbers(self, col: str) -> TextFacts:
        present = self.df[col].dropna().astype(str)
        numeric = pd.to_numeric(present, errors="coerce").notna()
        return TextFacts(len(present), int(numeric.sum()), sorted(present[~numeric].unique().tolist())[:3])

    def numeric_facts(self, col: str, lo: float | None, hi: float | None) -> NumericFacts:
        s = self.df[col]
        coerced = pd.to_numeric(s, errors="coerce")
        bad = s.notna() & coerced.isna()
        vals = coerced.dropna()
        as_float = vals.to_numpy(dtype=float)
        outside = int(((vals < lo) | (vals > hi)).sum()) if lo is not None and hi is not None and len(vals) else 0
        return NumericFacts(
            bad=int(bad.sum()),
            bad_examples=s[bad].astype(str).head(3).tolist(),
            values=len(vals),
            infinite=int((~np.isfinite(as_float)).sum()),
            outside=outside,
            low=float(vals.min()) if len(vals) else None,
            high=float(vals.max()) if len(vals) else None,
        )

    def unseen(self, col: str, domain: Sequence[str]) -> tuple[int, int, list[str]]:
        present = self.df[col].dropna().astype(str)
        mask = ~present.isin(set(domain))
        return len(present), int(mask.sum()), sorted(present[mask].unique().tolist())[:5]

    def bins(self, col: str, edges: list[float]) -> tuple[int, list[int]]:
        present = self.df[col].dropna()
        values = pd.to_numeric(present, errors="coerce").dropna().to_numpy(dtype=float)
        return len(present), bin_counts(values, edges)

    def slice(self, start: int, stop: int) -> FrameTable:
        return FrameTable(self.df.iloc[start:stop])


# -- a Parquet file in DuckDB ----------------------------------------------------------------------------------
_ROW = "file_row_number"  # read_parquet's row position in the file: the snapshot's row order


class SqlTable:
    """A :class:`Table` over Parquet files read by DuckDB on ``con`` (held to the engine's limits): each question
    one aggregate query, what comes back a few numbers or at most a column's distinct values."""

    def __init__(self, con: Any, paths: Sequence[str], *, start: int | None = None, stop: int | None = None) -> None:
        self.con, self.paths, self.start, self.stop = con, list(paths), start, stop
        files = parquet_source(self.paths)[: -len("])")] + "], file_row_number = true)"
        where = [f"{_ROW} >= {start}"] if start is not None else []
        where += [f"{_ROW} < {stop}"] if stop is not None else []
        self.source = f"(SELECT * FROM {files}" + (f" WHERE {' AND '.join(where)}" if where else "") + ")"
        described = con.execute(f"DESCRIBE SELECT * FROM {files}").fetchall()
        self.types = {str(r[0]): str(r[1]) for r in described if str(r[0]) != _ROW}
        self._missing: dict[str, int] = {}
        self._rows: int | None = None

    def _one(self, sql: str) -> tuple[Any, ...]:
        row = self.con.execute(sql).fetchone()
        assert row is not None, sql
        return tuple(row)

    def _base(self, col: str) -> str:
        return self.types[col].split("(")[0]

    def _present(self, col: str) -> str:
        x = quote(col)
        return f"{x} IS NOT NULL" + (f" AND NOT isnan({x})" if self._base(col) in _FLOATS else "")

    def _text(self, col: str) -> str:
        """SQL for the value's text as Python's ``str`` gives it, for the types whose text the two agree on."""
        x = quote(col)
        base = self._base(col)
        if base == "BOOLEAN":
            return f"CASE WHEN {x} THEN 'True' ELSE 'False' END"
        return f"{x}::VARCHAR"

    def _number(self, col: str) -> str:
        """The value as a number (text parsed; NULL where it is none), as ``pd.to_numeric(errors='coerce')``."""
        x = quote(col)
        base = self._base(col)
        if base in _INTEGERS or base in _FLOATS or base == "DECIMAL":
            return f"{x}::DOUBLE"
        if base == "BOOLEAN":
            return f"{x}::INTEGER::DOUBLE"
        return f"TRY_CAST(trim({x}::VARCHAR) AS DOUBLE)"

    @property
    def columns(self) -> list[str]:
        return list(self.types)

    @property
    def rows(self) -> int:
        if self._rows is None:
            self._rows = int(self._one(f"SELECT count(*) FROM {self.source}")[0])
        return self._rows

    def kind(self, col: str) -> FeatureType:
        return sql_kind(self.types[col])

    def dtype(self, col: str) -> str:
        return _pandas_dtype(self.types[col], self.missing(col))

    def is_bool(self, col: str) -> bool:
        return self._base(col) == "BOOLEAN"

    def is_number(self, col: str) -> bool:
        return sql_kind(self.types[col]) is FeatureType.NUMERIC

    def missing(self, col: str) -> int:
        if col not in self._missing:
            self._missing[col] = int(
                self._one(f"SELECT count(*) FILTER (WHERE NOT ({self._present(col)})) FROM {self.source}")[0]
            )
        return self._missing[col]

    def distinct(self, col: str) -> int:
        return int(self._one(f"SELECT count(DISTINCT {quote(col)}) FROM {self.source} WHERE {self._present(col)}")[0])

    def first_present(self, col: str) -> Any:
        row = self.con.execute(
            f"SELECT {quote(col)} FROM {self.source} WHERE {self._present(col)} ORDER BY {_ROW} LIMIT 1"
        ).fetchone()
        return row[0] if row else None

    def texts(self, col: str, limit: int | None = None) -> list[str] | None:
        cap = f" LIMIT {limit + 1}" if limit is not None else ""
        found = {
            str(r[0])
            for r in self.con.execute(
                f"SELECT DISTINCT {quote(col)} FROM {self.source} WHERE {self._present(col)}{cap}"
            ).fetchall()
        }
        return None if limit is not None and len(found) > limit else sorted(found)

    def text_counts(self, col: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for value, n in self.con.execute(
            f"SELECT {quote(col)}, count(*) FROM {self.source} WHERE {self._present(col)} GROUP BY 1"
        ).fetchall():
            counts[str(value)] = counts.get(str(value), 0) + int(n)
        return counts

    def task(self, col: str) -> Task:
        from mlops.data.stats import sql_task

        return sql_task(self.con, self.source, col, self.types[col])

    def text_numbers(self, col: str) -> TextFacts:
        text = self._text(col)
        number = f"TRY_CAST(trim({text}) AS DOUBLE)"
        present, numeric = self._one(f"SELECT count(*), count({number}) FROM {self.source} WHERE {self._present(col)}")
        examples = [
            str(r[0])
            for r in self.con.execute(
                f"SELECT DISTINCT {text} AS t FROM {self.source} WHERE {self._present(col)} AND {number} IS NULL "
                "ORDER BY t LIMIT 3"
            ).fetchall()
        ]
        return TextFacts(int(present), int(numeric), examples)

    def numeric_facts(self, col: str, lo: float | None, hi: float | None) -> NumericFacts:
        v = self._number(col)
        outside = f"count(*) FILTER (WHERE {v} < {lo!r} OR {v} > {hi!r})" if lo is not None and hi is not None else "0"
        present = self._present(col)
        bad, values, infinite, out, low, high = self._one(
            f"SELECT count(*) FILTER (WHERE {present} AND {v} IS NULL), count({v}) FILTER (WHERE NOT isnan({v})), "
            f"count(*) FILTER (WHERE isinf({v})), {outside}, min({v}) FILTER (WHERE NOT isnan({v})), "
            f"max({v}) FILTER (WHERE NOT isnan({v})) FROM {self.source}"
        )
        examples = (
            [
                str(r[0])
                for r in self.con.execute(
                    f"SELECT {self._text(col)} FROM {self.source} WHERE {present} AND {v} IS NULL ORDER BY {_ROW} "
                    "LIMIT 3"
                ).fetchall()
            ]
            if bad
            else []
        )
        return NumericFacts(
            int(bad),
            examples,
            int(values),
            int(infinite),
            int(out),
            float(low) if low is not None else None,
            float(high) if high is not None else None,
        )

    def unseen(self, col: str, domain: Sequence[str]) -> tuple[int, int, list[str]]:
        text = self._text(col)
        known = "[" + ", ".join("'" + d.replace("'", "''") + "'" for d in domain) + "]"
        present = self._present(col)
        n, unseen = self._one(
            f"SELECT count(*), count(*) FILTER (WHERE NOT list_contains({known}::VARCHAR[], {text})) "
            f"FROM {self.source} WHERE {present}"
        )
        examples = (
            [
                str(r[0])
                for r in self.con.execute(
                    f"SELECT DISTINCT {text} AS t FROM {self.source} WHERE {present} AND "
                    f"NOT list_contains({known}::VARCHAR[], {text}) ORDER BY t LIMIT 5"
                ).fetchall()
            ]
            if unseen
            else []
        )
        return int(n), int(unseen), examples

    def bins(self, col: str, edges: list[float]) -> tuple[int, list[int]]:
        v = self._number(col)
        interior = edges[1:-1] if len(edges) >= 2 else []
        counted = ", ".join(
            [f"count(*) FILTER (WHERE {v} IS NOT NULL AND NOT isnan({v}))"]
            + [f"count(*) FILTER (WHERE {v} >= {e!r} AND NOT isnan({v}))" for e in interior]
        )
        present, size, *at_or_past = self._one(
            f"SELECT count(*), {counted} FROM {self.source} WHERE {self._present(col)}"
        )
        if len(edges) < 2:
            return int(present), [int(size)]
        cumulative = [int(size), *map(int, at_or_past), 0]
        return int(present), [cumulative[i] - cumulative[i + 1] for i in range(len(cumulative) - 1)]

    def slice(self, start: int, stop: int) -> SqlTable:
        return SqlTable(self.con, self.paths, start=start, stop=stop)


def as_table(data: Table | pd.DataFrame) -> Table:
    """``data`` as a :class:`Table` (a frame wrapped)."""
    return FrameTable(data) if isinstance(data, pd.DataFrame) else data
