"""Reading tabular files into DataFrames and the canonical Parquet snapshot format."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from mlops.core.config import DataFormat

# Parquet goes through fastparquet directly, not pyarrow: pyarrow (~150 MB) does not fit in the
# pipeline layer beside scikit-learn, and pandas 3 deprecates its own fastparquet engine. It is imported where a
# frame is written or read: the data bundle has none (its steps read and write Parquet with DuckDB); the train
# bundle reads the splits with it.


def detect_format(key: str, declared: DataFormat) -> DataFormat:
    if declared is not DataFormat.AUTO:
        return declared
    lower = key.lower()
    if lower.endswith((".parquet", ".pq")):
        return DataFormat.PARQUET
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return DataFormat.JSONL
    return DataFormat.CSV


def read_table(data: bytes, key: str, fmt: DataFormat) -> pd.DataFrame:
    """Parse one object held in memory (a sample file, a tool's input) as extract parses a landed one
    (:func:`mlops.data.landing.load_object`, DuckDB under a temporary directory); raise
    :class:`DataValidationError` for an empty or unparseable file."""
    from mlops.data.engine import EngineLimits, connect
    from mlops.data.landing import load_object

    limits = EngineLimits.for_function()
    with tempfile.TemporaryDirectory(prefix="read-", dir=limits.temp_root) as tmp, connect(limits) as con:
        con.execute("SET preserve_insertion_order = true")
        landed, parsed = os.path.join(tmp, "object"), os.path.join(tmp, "object.parquet")
        with open(landed, "wb") as fh:
            fh.write(data)
        load_object(con, Path(landed), key, fmt, Path(parsed))
        with open(parsed, "rb") as fh:
            return from_parquet_bytes(fh.read())


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
    import fastparquet

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.parquet")
        fastparquet.write(path, _repeated_as_categories(normalize(df)), write_index=False, compression="SNAPPY")
        with open(path, "rb") as fh:
            return fh.read()


def from_parquet_bytes(data: bytes) -> pd.DataFrame:
    import fastparquet

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
