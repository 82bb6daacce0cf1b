"""Each component of this project passes every rule of `mlops component check` on the sample data."""

from pathlib import Path

import pandas as pd
import pytest

from mlops.testing import assert_component_ok

SAMPLE = pd.read_csv(Path(__file__).parents[1] / "data" / "seattle-weather.csv")


@pytest.mark.parametrize(
    ("component", "params"),
    [
        ("components.features:Ratio", {"num": "precipitation", "den": "wind", "name": "rain_per_wind"}),
        ("components.features:TimestampParts", {"column": "date"}),
    ],
)
def test_the_component_is_servable(component: str, params: dict) -> None:
    assert_component_ok(component, SAMPLE, params=params)


def test_timestamp_parts_reads_an_iso_date() -> None:
    from components.features import TimestampParts

    parts = TimestampParts("date").fit_transform(pd.DataFrame({"date": ["2024-03-15T13:45:00", "2024-03-17"]}))
    assert parts[["date_hour", "date_weekday", "date_month"]].to_numpy().tolist() == [[13, 4, 3], [0, 6, 3]]
