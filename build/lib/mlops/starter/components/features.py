"""Feature components: each computes its columns in pandas/numpy (``compute``) and as ONNX nodes (``onnx``), so the
served graph computes them from the raw request exactly as training did. Check one with
``mlops component check components.features:Ratio --data data/sample.csv``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops.components import FeatureComponent, Ops


class Ratio(FeatureComponent):
    """``num / den`` as a new numeric column; missing where the denominator is 0 or either side is missing."""

    def __init__(self, num: str = "num", den: str = "den", name: str = "ratio") -> None:
        self.num = num
        self.den = den
        self.name = name

    def input_columns(self) -> list[str]:
        return [self.num, self.den]

    def output_columns(self) -> dict[str, str]:
        return {self.name: "numeric"}

    def compute(self, X: pd.DataFrame) -> dict[str, Any]:
        num = X[self.num].to_numpy(dtype=np.float32)
        den = X[self.den].to_numpy(dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            return {self.name: np.where(den == 0, np.float32(np.nan), num / den)}

    def onnx(self, x: dict[str, Any], op: Ops) -> dict[str, Any]:
        den = x[self.den]
        ratio = op.Where(op.Equal(den, op.const(0.0)), op.const(np.nan), op.Div(x[self.num], den))
        return {self.name: ratio}


# A timestamp as ISO-8601 text: a date, optionally a time after 'T' or a space (anything after the minutes, seconds
# or a zone, is read as written: no conversion between zones).
TIMESTAMP = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])([T ]([01]\d|2[0-3]):[0-5]\d.*)?"
# Sakamoto's month offsets: a date's weekday in integer arithmetic, exact in float32 in numpy and in ONNX alike.
MONTH_OFFSETS = np.array([0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4], dtype=np.float32)


class TimestampParts(FeatureComponent):
    """An ISO-8601 timestamp column's hour, weekday (Monday 0) and month as numeric columns; missing where the text
    is not a timestamp. Needs ONNX opset 20 (string split and regular expressions)."""

    min_opset = 20

    def __init__(self, column: str = "timestamp") -> None:
        self.column = column

    def input_columns(self) -> list[str]:
        return [self.column]

    def output_columns(self) -> dict[str, str]:
        return {f"{self.column}_{part}": "numeric" for part in ("hour", "weekday", "month")}

    def compute(self, X: pd.DataFrame) -> dict[str, Any]:
        text = X[self.column].astype(str)
        valid = text.str.fullmatch(TIMESTAMP).to_numpy(dtype=bool)
        parts = text.str.extract(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}))?")
        year, month, day = (parts[i].fillna("1970").to_numpy().astype(np.float32) for i in range(3))
        hour = parts[3].fillna("0").to_numpy().astype(np.float32)
        month = np.where(valid, month, np.float32(1))
        y = year - (month < 3)
        total = y + np.floor(y / 4) - np.floor(y / 100) + np.floor(y / 400) + MONTH_OFFSETS[month.astype(int) - 1] + day
        weekday = np.fmod(np.fmod(total, 7) + 6, 7)  # Sakamoto's method counts from Sunday
        nan = np.float32(np.nan)
        return {
            f"{self.column}_hour": np.where(valid, hour, nan),
            f"{self.column}_weekday": np.where(valid, weekday, nan),
            f"{self.column}_month": np.where(valid, month, nan),
        }

    def onnx(self, x: dict[str, Any], op: Ops) -> dict[str, Any]:
        def text(value: str) -> np.ndarray:
            return np.array([value], dtype=object)

        def token(split: Any, i: int) -> Any:  # the i-th piece of each row's split, [N, 1]: StringSplit's output 0
            return op.Gather(split[0], np.array(i, dtype=np.int64), axis=2)

        def number(piece: Any) -> Any:  # "" (a piece that is not there) reads as 0
            return op.Cast(op.StringConcat(text("0"), piece), to=1)

        valid = op.RegexFullMatch(x[self.column], pattern=TIMESTAMP)
        safe = op.Where(valid, x[self.column], text("1970-01-01"))
        # "date time", "dateTtime" or "date" → "date", "time" (or "")
        halves = op.StringSplit(op.StringConcat(safe, text(" ")), delimiter=" ")
        joined = op.StringConcat(op.StringConcat(token(halves, 0), text("T")), token(halves, 1))
        date_time = op.StringSplit(joined, delimiter="T")
        date = op.StringSplit(token(date_time, 0), delimiter="-")
        clock = op.StringSplit(op.StringConcat(token(date_time, 1), text(":")), delimiter=":")
        year, month, day = number(token(date, 0)), number(token(date, 1)), number(token(date, 2))
        hour = number(token(clock, 0))

        def quarter(v: Any, n: float) -> Any:  # floor(v / n)
            return op.Floor(op.Div(v, op.const(n)))

        y = op.Sub(year, op.Cast(op.Less(month, op.const(3)), to=1))
        offset = op.Gather(MONTH_OFFSETS, op.Cast(op.Sub(month, op.const(1)), to=7), axis=0)
        total = op.Add(op.Add(op.Sub(op.Add(y, quarter(y, 4)), quarter(y, 100)), quarter(y, 400)), op.Add(offset, day))
        weekday = op.Mod(op.Add(op.Mod(total, op.const(7), fmod=1), op.const(6)), op.const(7), fmod=1)
        nan = op.const(np.nan)
        return {
            f"{self.column}_hour": op.Where(valid, hour, nan),
            f"{self.column}_weekday": op.Where(valid, weekday, nan),
            f"{self.column}_month": op.Where(valid, month, nan),
        }
