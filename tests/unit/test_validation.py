"""Validation catches and names each kind of broken data."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops.core.config import DataFormat
from mlops.core.errors import DataValidationError
from mlops.data.frames import read_table, to_parquet_bytes
from mlops.data.schema import infer_schema, validate
from mlops.tools.samples import corrupt, customers
from tests.conftest import CHURN_CONFIG

pytestmark = pytest.mark.unit

CFG = CHURN_CONFIG


@pytest.fixture(scope="module")
def schema() -> dict:
    return infer_schema(customers(2000, seed=1), CFG)


def _codes(df: pd.DataFrame, schema: dict) -> dict[tuple[str, str], str]:
    result = validate(df, schema, CFG)
    return {(a["code"], a["column"]): a["severity"] for a in result["anomalies"]}


def test_given_clean_data_when_validated_then_it_passes(schema: dict) -> None:
    result = validate(customers(2000, seed=2), schema, CFG)
    assert result["passed"], result["anomalies"]


@pytest.mark.parametrize(
    ("how", "column", "code", "severity"),
    [
        ("drop", "age", "MISSING_COLUMN", "error"),
        ("rename", "plan", "EXTRA_COLUMN", "warning"),
        ("to_text", "income", "WRONG_DTYPE", "error"),
        ("unseen", "region", "UNSEEN_CATEGORY", "error"),
        ("out_of_range", "tenure_months", "OUT_OF_RANGE", "error"),
        ("nulls", "support_calls", "MISSING_RATE_SPIKE", "error"),
    ],
)
def test_given_broken_data_when_validated_then_the_anomaly_is_named(
    schema: dict, how: str, column: str, code: str, severity: str
) -> None:
    broken = corrupt(customers(2000, seed=2), how, column)
    found = _codes(broken, schema)
    key = (code, f"{column}_v2" if how == "rename" else column)
    assert found.get(key) == severity, found
    if severity == "error":
        assert not validate(broken, schema, CFG)["passed"]


def test_given_a_few_unseen_categories_when_validated_then_it_is_only_a_warning(schema: dict) -> None:
    found = _codes(corrupt(customers(2000, seed=2), "unseen", "region", fraction=0.01), schema)
    assert found[("UNSEEN_CATEGORY", "region")] == "warning"


def test_given_too_few_rows_when_validated_then_row_count_fails(schema: dict) -> None:
    assert _codes(customers(20, seed=3), schema)[("LOW_ROW_COUNT", "")] == "error"


@pytest.mark.parametrize("fmt", [DataFormat.CSV, DataFormat.PARQUET, DataFormat.JSONL])
def test_given_an_empty_file_when_read_then_empty_file_is_named(fmt: DataFormat) -> None:
    with pytest.raises(DataValidationError) as err:
        read_table(b"", "batch.x", fmt)
    assert err.value.anomalies[0]["code"] == "EMPTY_FILE"


def test_given_a_header_only_csv_when_read_then_empty_file_is_named() -> None:
    with pytest.raises(DataValidationError) as err:
        read_table(b"a,b,c\n", "batch.csv", DataFormat.CSV)
    assert err.value.anomalies[0]["code"] == "EMPTY_FILE"


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"PAR1\x00\x01garbage-not-parquet", DataFormat.PARQUET),
        (b'{"a": 1}\n{"a": broken', DataFormat.JSONL),
        (b'a,b\n1,2\n"unterminated,3\n', DataFormat.CSV),
    ],
)
def test_given_an_unparseable_file_when_read_then_unparseable_is_named(data: bytes, fmt: DataFormat) -> None:
    with pytest.raises(DataValidationError) as err:
        read_table(data, "batch", fmt)
    assert err.value.anomalies[0]["code"] == "UNPARSEABLE_FILE"


def test_given_each_format_when_read_then_the_same_frame_comes_back() -> None:
    df = customers(50, seed=4)
    csv = read_table(df.to_csv(index=False).encode(), "a.csv", DataFormat.CSV)
    jsonl = read_table(df.to_json(orient="records", lines=True).encode(), "a.jsonl", DataFormat.JSONL)
    parquet = read_table(to_parquet_bytes(df), "a.parquet", DataFormat.PARQUET)
    for got in (csv, jsonl, parquet):
        assert list(got.columns) == list(df.columns)
        assert got["churn"].tolist() == df["churn"].tolist()
        assert got["plan"].tolist() == df["plan"].tolist()
