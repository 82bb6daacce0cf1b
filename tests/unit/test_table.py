"""The checks answer the same over a Parquet file in DuckDB (the data steps) as over a frame (the monitor)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.data.engine import EngineLimits, connect
from mlops.data.frames import to_parquet_bytes
from mlops.data.schema import carriers, consensus_problems, infer_schema, object_problems, usability, validate
from mlops.data.stats import frame_statistics
from mlops.data.table import FrameTable, SqlTable
from mlops.tools.samples import corrupt, customers
from tests.conftest import CHURN_CONFIG

pytestmark = pytest.mark.unit

CFG = CHURN_CONFIG
LIMITS = EngineLimits(memory_mb=128, threads=1)


def _broken(how: str) -> pd.DataFrame:
    df = customers(800, seed=2)
    if how == "clean":
        return df
    if how == "text_in_numbers":
        df["age"] = df["age"].astype(object)
        df.loc[df.index[5:9], "age"] = ["n/a", "?", "n/a", "unknown"]
        return df
    if how == "infinite":
        df.loc[df.index[:3], "income"] = np.inf
        return df
    if how == "mostly_numbers":  # a categorical column that is 90 % numbers: WRONG_DTYPE by usability
        df["plan"] = [str(i) if i % 10 else "basic" for i in range(len(df))]
        return df
    if how == "single_class":
        return df.assign(churn=1)
    if how == "rare_class":
        df.loc[df.index[:2], "churn"] = 7
        return df
    if how == "bool_feature":
        return df.assign(tenure_months=df["tenure_months"] > 10)
    if how == "all_missing":
        return df.assign(support_calls=np.nan)
    if how == "shifted":
        return df.assign(income=df["income"] * 3, region=["north"] * len(df))
    column, damage = how.split(":")
    return corrupt(df, damage, column)


CASES = [
    "clean",
    "text_in_numbers",
    "infinite",
    "mostly_numbers",
    "single_class",
    "rare_class",
    "bool_feature",
    "all_missing",
    "shifted",
    "age:drop",
    "plan:rename",
    "income:to_text",
    "region:unseen",
    "tenure_months:out_of_range",
    "support_calls:nulls",
]


def _same(a: object, b: object) -> None:
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


@pytest.fixture(scope="module")
def base() -> tuple[dict, dict]:
    df = customers(2000, seed=1)
    return infer_schema(df, CFG), frame_statistics(df, CFG, LIMITS)


@pytest.mark.parametrize("how", CASES)
def test_given_a_batch_then_the_file_and_the_frame_give_the_same_anomalies(tmp_path: Path, base, how: str) -> None:
    schema, stats = base
    df = _broken(how)
    path = tmp_path / "snapshot.parquet"
    path.write_bytes(to_parquet_bytes(df))
    with connect(LIMITS) as con:
        sql = SqlTable(con, [str(path)])
        frame = FrameTable(df)
        _same(usability(sql, CFG), usability(frame, CFG))
        _same(object_problems(sql, schema, CFG), object_problems(frame, schema, CFG))
        _same(object_problems(sql, None, CFG), object_problems(frame, None, CFG))
        _same(validate(sql, schema, CFG, stats), validate(frame, schema, CFG, stats))
        if how not in ("single_class", "all_missing", "age:drop"):
            _same(infer_schema(sql, CFG), infer_schema(frame, CFG))
        parts = [("a.csv", 300), ("b.csv", 500)]
        found_sql = validate(sql, schema, CFG, stats)["anomalies"]
        found_frame = validate(frame, schema, CFG, stats)["anomalies"]
        carriers(found_sql, sql, parts, schema, CFG, stats)
        carriers(found_frame, frame, parts, schema, CFG, stats)
        _same(found_sql, found_frame)


def test_given_objects_then_their_consensus_is_the_same_from_files_and_frames(tmp_path: Path) -> None:
    frames = {f"o{i}.csv": customers(200, seed=i) for i in range(3)}
    frames["o3.csv"] = corrupt(customers(200, seed=3), "to_text", "income").drop(columns=["age"])
    with connect(LIMITS) as con:
        tables = {}
        for key, df in frames.items():
            (tmp_path / key).write_bytes(to_parquet_bytes(df))
            tables[key] = SqlTable(con, [str(tmp_path / key)])
        found = consensus_problems(tables, CFG)
        _same(found, consensus_problems(frames, CFG))
    assert {(a["code"], a["column"]) for a in found["o3.csv"]} == {("MISSING_COLUMN", "age"), ("WRONG_DTYPE", "income")}
