"""Reading tabular files into DataFrames and the canonical Parquet snapshot format."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections import Counter

import fastparquet
import pandas as pd

from mlops.core.config import DataFormat
from mlops.core.errors import DataValidationError

# Parquet goes through fastparquet directly, not pyarrow: pyarrow (~150 MB) does not fit in the
# pipeline layer beside scikit-learn, and pandas 3 deprecates its own fastparquet engine.


def detect_format(key: str, declared: DataFormat) -> DataFormat:
    if declared is not DataFormat.AUTO:
        return declared
    lower = key.lower()
    if lower.endswith((".parquet", ".pq")):
        return DataFormat.PARQUET
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return DataFormat.JSONL
    return DataFormat.CSV


def _anomaly(code: str, key: str, description: str) -> dict[str, str]:
    return {"code": code, "severity": "error", "column": "", "object": key, "description": description}


def read_table(data: bytes, key: str, fmt: DataFormat) -> pd.DataFrame:
    """Parse one object; raise :class:`DataValidationError` for an empty or unparseable file."""
    if not data.strip():
        raise DataValidationError(
            f"{key} is empty", [_anomaly("EMPTY_FILE", key, "the object has no bytes or only whitespace")]
        )
    try:
        if fmt is DataFormat.PARQUET:
            df = fastparquet.ParquetFile(io.BytesIO(data)).to_pandas()
        elif fmt is DataFormat.JSONL:
            df = pd.read_json(io.BytesIO(data), lines=True, dtype=False)
        else:
            df = pd.read_csv(io.BytesIO(data), low_memory=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OSError, json.JSONDecodeError) as err:
        raise DataValidationError(
            f"{key} could not be parsed as {fmt.value}: {err}",
            [_anomaly("UNPARSEABLE_FILE", key, f"not valid {fmt.value}: {str(err)[:200]}")],
        ) from None
    except Exception as err:  # noqa: BLE001 — fastparquet raises a variety of low-level errors on garbage
        raise DataValidationError(
            f"{key} could not be parsed as {fmt.value}: {err}",
            [_anomaly("UNPARSEABLE_FILE", key, f"not valid {fmt.value}: {type(err).__name__}")],
        ) from None
    if df.empty or len(df.columns) == 0:
        raise DataValidationError(f"{key} has no rows", [_anomaly("EMPTY_FILE", key, "no data rows")])
    if fmt is DataFormat.CSV:
        _check_csv_header(data, key, df)
    return normalize(df)


DELIMITERS = (";", "\t", "|")


def _check_csv_header(data: bytes, key: str, df: pd.DataFrame) -> None:
    """Name the header problems pandas would silently paper over: a file read with the wrong delimiter
    (one column whose name holds ';'), and duplicate column names (pandas renames them 'a.1')."""
    first = data.lstrip().split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    header = next(csv.reader([first]), [])
    if len(df.columns) == 1:
        if any(str(c).startswith("Unnamed: ") for c in df.columns):
            raise DataValidationError(f"{key} has no header", [_anomaly("UNPARSEABLE_FILE", key, "no header row")])
        found = [d for d in DELIMITERS if d in first]
        if found:
            shown = {"\t": "tab"}.get(found[0], repr(found[0]))
            raise DataValidationError(
                f"{key} looks {shown}-delimited",
                [
                    _anomaly(
                        "WRONG_DELIMITER",
                        key,
                        f"the header is one column ({first[:80]!r}): the file looks {shown}-delimited, but CSV "
                        "is read with ',' — export it comma-separated (or upload Parquet / JSON Lines)",
                    )
                ],
            )
    duplicates = sorted(name for name, n in Counter(h.strip() for h in header).items() if n > 1)
    if duplicates:
        raise DataValidationError(
            f"{key} has duplicate column names {duplicates}",
            [
                {
                    **_anomaly("DUPLICATE_COLUMN", key, f"the header names {name!r} more than once; rename one"),
                    "column": name,
                }
                for name in duplicates
            ],
        )


# A text column with at most this share of distinct values is written dictionary-encoded (see _repeated_as_categories).
DICTIONARY_MAX_SHARE = 0.5


def _repeated_as_categories(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose values repeat (a plan, a region) as categoricals, so Parquet stores them
    dictionary-encoded and a reader gets one string object per distinct value back, every row referring to it —
    decoded as plain text, each row is a string object of its own (~55 bytes for "basic", against the 8 of a
    reference): a 1M-row frame with two such columns held ~110 MB more in every step that read it. Reading
    (:func:`normalize`) turns them back into ``object`` columns, so what a step sees is unchanged."""
    out = df.copy(deep=False)
    for col in df.columns:
        if df[col].dtype == object:
            sample = df[col].iloc[:: max(1, len(df) // 10_000)]  # an id column is told apart without hashing it all
            if sample.nunique() > DICTIONARY_MAX_SHARE * len(sample):
                continue
            categorical = pd.Categorical(df[col])
            if 0 < len(categorical.categories) <= DICTIONARY_MAX_SHARE * len(df):
                out[col] = categorical
    return out


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.parquet")
        fastparquet.write(path, _repeated_as_categories(normalize(df)), write_index=False, compression="SNAPPY")
        with open(path, "rb") as fh:
            return fh.read()


def from_parquet_bytes(data: bytes) -> pd.DataFrame:
    return normalize(fastparquet.ParquetFile(io.BytesIO(data)).to_pandas())


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns as ``object`` with ``None`` for missing, whatever the reader or pandas version.

    A column mixing text with numbers (JSON Lines with ``"heavy"`` among numbers) becomes all text, as the
    same data read from CSV would be, so validation names it (WRONG_DTYPE) instead of the Parquet writer
    failing on it. Only the text columns are replaced; the others are shared with ``df``, never copied (pandas'
    copy-on-write keeps ``df`` as it was)."""
    out = df.copy(deep=False)
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_string_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
            present = s.notna()
            values = s.astype(object)
            if s.dtype == object and not all(isinstance(v, str) for v in values[present]):
                values = values.map(_as_text).astype(object)
            out[col] = values.where(present, None) if not present.all() else values
    return out


def _as_text(value: object) -> object:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)
