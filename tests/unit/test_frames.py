"""Snapshots and splits store repeated text dictionary-encoded; every step still reads plain ``object`` columns."""

from __future__ import annotations

import io

import fastparquet
import numpy as np
import pandas as pd
import pytest

from mlops.data.frames import from_parquet_bytes, to_parquet_bytes

pytestmark = pytest.mark.unit


def frame(rows: int = 2_000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    plan = rng.choice(["basic", "plus", "pro"], rows).astype(object)
    plan[::7] = None
    return pd.DataFrame(
        {
            "id": [f"c-{i:07d}" for i in range(rows)],
            "plan": plan,
            "mixed": ["a", 1, 2.5, None] * (rows // 4),
            "x": rng.random(rows),
        }
    )


def test_given_repeated_text_then_it_is_stored_as_a_dictionary_and_read_back_as_the_same_text():
    df = frame()
    data = to_parquet_bytes(df)
    stored = fastparquet.ParquetFile(io.BytesIO(data))
    assert stored.categories == {"plan": 3, "mixed": 3}  # distinct ids stay plain
    back = from_parquet_bytes(data)
    assert back.dtypes.to_dict() == {"id": object, "plan": object, "mixed": object, "x": np.float64}
    assert back["plan"].tolist() == [v if isinstance(v, str) else None for v in df["plan"]]  # None where missing
    assert back["mixed"].tolist() == ["a", "1", "2.5", None] * 500
    assert back["id"].tolist() == df["id"].tolist() and np.array_equal(back["x"], df["x"])


def test_given_a_dictionary_column_then_its_rows_share_one_string_object_per_value():
    back = from_parquet_bytes(to_parquet_bytes(frame()))
    assert len({id(v) for v in back["plan"] if v is not None}) == 3
    assert len({id(v) for v in back["id"]}) == len(back)


def test_given_an_all_missing_text_column_then_it_round_trips_as_missing():
    df = pd.DataFrame({"note": [None] * 10, "x": range(10)})
    assert from_parquet_bytes(to_parquet_bytes(df))["note"].tolist() == [None] * 10


def test_given_text_formats_when_read_then_columns_are_typed_as_pandas_read_them():
    from mlops.core.config import DataFormat
    from mlops.data.frames import read_table

    # GIVEN whole numbers with a gap, an empty column, booleans, dates; JSON mixing numbers with text
    csv = b"id,n,flag,d,empty\n1,,True,2024-01-01,\n2,3,False,2024-01-02,\n"
    jsonl = b'{"a": 1.5, "i": 1}\n{"a": "heavy", "i": null}\n{"a": 2, "i": 3}\n'
    # WHEN read (DuckDB, as extract reads a landed object)
    got = read_table(csv, "a.csv", DataFormat.CSV)
    mixed = read_table(jsonl, "a.jsonl", DataFormat.JSONL)
    # THEN the dtypes pandas gave: a gap makes floats, no value at all a float column, dates stay text
    assert dict(got.dtypes.astype(str)) == {
        "id": "int64",
        "n": "float64",
        "flag": "bool",
        "d": "object",
        "empty": "float64",
    }
    assert got["d"].tolist() == ["2024-01-01", "2024-01-02"]
    assert mixed["a"].tolist() == ["1.5", "heavy", "2"] and str(mixed["i"].dtype) == "float64"


def test_given_an_object_copied_on_a_connection_then_a_frame_is_still_written_beside_it(tmp_path):
    """An alarm-started run's extract: the landed objects are COPYed on the connection, then the labelled traffic
    (a frame) is written beside them. DuckDB refused to register a frame while the last COPY's result was pending
    (ResourceInUse), and the run failed in extract."""
    from mlops.core.config import DataFormat
    from mlops.data.engine import EngineLimits, connect
    from mlops.data.landing import load_object, write_frame, write_snapshot

    landed = tmp_path / "batch.csv"
    landed.write_text("a,b\n1,x\n2,y\n")
    with connect(EngineLimits(memory_mb=128, threads=1, temp_root=str(tmp_path))) as con:
        assert load_object(con, landed, "m/batch.csv", DataFormat.CSV, tmp_path / "part-0.parquet") == 2
        # the object's checks, as extract makes them: a query whose one row is fetched, its result left open
        assert con.execute(f"SELECT count(*) FROM read_parquet('{tmp_path / 'part-0.parquet'}')").fetchone() == (2,)
        frame = write_frame(con, pd.DataFrame({"a": [3], "b": ["z"]}), tmp_path / "feedback.parquet")
        rows, columns = write_snapshot(con, [tmp_path / "part-0.parquet", frame], tmp_path / "snapshot.parquet")
    assert rows == 3 and columns == ["a", "b"]


def test_given_parts_of_many_row_groups_when_snapshotted_on_two_threads_then_rows_keep_their_order(tmp_path):
    """write_snapshot keeps each part's rows in order and the parts in the order given, without sorting: DuckDB's
    insertion order over a list of files, which two threads scanning many row groups must not shuffle."""
    from mlops.data.engine import EngineLimits, connect
    from mlops.data.landing import write_snapshot

    parts = []
    for i, rows in enumerate((120_000, 5, 80_000)):  # a part without the column "late": read as missing
        df = pd.DataFrame({"n": np.arange(rows) + i * 1_000_000, "x": np.random.default_rng(i).random(rows)})
        if i != 1:
            df["late"] = "v"
        parts.append(tmp_path / f"part-{i}.parquet")
        fastparquet.write(str(parts[-1]), df, write_index=False, row_group_offsets=7_000)
    with connect(EngineLimits(memory_mb=256, threads=2, temp_root=str(tmp_path))) as con:
        rows, columns = write_snapshot(con, list(reversed(parts)), tmp_path / "snapshot.parquet")
        assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (False,)
    snap = pd.read_parquet(tmp_path / "snapshot.parquet")
    expected = np.concatenate([np.arange(80_000) + 2_000_000, np.arange(5) + 1_000_000, np.arange(120_000)])
    assert rows == 200_005 and sorted(columns) == ["late", "n", "x"]
    assert (snap["n"].to_numpy() == expected).all()
    assert snap["late"].isna().sum() == 5
