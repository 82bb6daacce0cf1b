"""Feature sets as reviewed config: typed, and every model's use of one checked at synthesis, naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.core.config import ConfigError, ModelSet, load_models
from mlops.core.feature_sets import FeatureSets, load_feature_set, parse_feature_set
from tests.feature_store import CUSTOMERS, churn_config, customers

pytestmark = pytest.mark.unit


def _raw() -> dict:
    return yaml.safe_load(CUSTOMERS.read_text())


def test_given_the_example_feature_set_when_loaded_then_it_is_typed_and_hashed() -> None:
    fs = load_feature_set(CUSTOMERS)
    assert fs.keys == ["customer_id"] and fs.ttl_seconds == 720 * 3600 and fs.online
    assert fs.features["plan"].value == "categorical"
    assert fs.entity_id({"customer_id": "c001"}) == "c001"
    assert len(fs.definition_hash()) == 64
    assert parse_feature_set({**_raw(), "ttl_hours": 1}, "x").definition_hash() != fs.definition_hash()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("event_time"), "event_time: required field is missing"),
        (lambda d: d.update(ttl_hours=0), "ttl_hours: Input should be greater than 0"),
        (lambda d: d.update(source="s3://b/x/"), "source: give a key prefix"),
        (lambda d: d["features"].update(as_of="numeric"), "also name the entity or event_time column"),
        (lambda d: d["features"].update(x="text"), "features.x: Input should be 'numeric' or 'categorical'"),
        (lambda d: d.update(colour=1), "colour: unknown field"),
    ],
)
def test_given_an_invalid_feature_set_when_loaded_then_the_error_names_file_and_field(mutate, expected) -> None:
    raw = _raw()
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        parse_feature_set(raw, "feature_sets/customers.yaml")
    assert "feature_sets/customers.yaml" in str(err.value) and expected in str(err.value)


def _other(**fields) -> FeatureSets:
    second = parse_feature_set({**_raw(), "name": "orders", "source": "features/orders/", **fields}, "orders.yaml")
    return FeatureSets([(str(CUSTOMERS), load_feature_set(CUSTOMERS)), ("orders.yaml", second)])


@pytest.mark.parametrize(
    ("uses", "sets", "expected"),
    [
        ([{"name": "nope"}], customers(), "churn.yaml: feature_sets.0.name: unknown feature set 'nope'"),
        ([{"name": "customers", "features": ["age"]}], customers(), "churn.yaml: feature_sets.0.features: ['age']"),
        (
            [{"name": "customers"}, {"name": "orders"}],
            _other(entity=[{"name": "customer_id", "type": "integer"}]),
            "churn.yaml: feature_sets.1.name: key type mismatch: feature set 'orders' keys 'customer_id' as integer",
        ),
    ],
)
def test_given_a_model_misusing_a_feature_set_when_synthesized_then_the_error_names_file_and_field(
    uses, sets, expected
) -> None:
    with pytest.raises(ConfigError) as err:
        ModelSet([("churn.yaml", churn_config(feature_sets=uses))], sets)
    assert str(err.value).startswith(expected)


def test_given_a_key_typed_otherwise_by_the_model_then_synthesis_names_the_override() -> None:
    config = churn_config(features={"overrides": {"customer_id": {"type": "numeric"}}})
    with pytest.raises(ConfigError, match=r"churn.yaml: features.overrides.customer_id.type: key type mismatch"):
        ModelSet([("churn.yaml", config)], customers())


def test_given_a_source_inside_a_model_prefix_then_synthesis_refuses_it() -> None:
    config = churn_config(data={"prefix": "features/"})
    with pytest.raises(ConfigError, match=r"customers.yaml: source: 'features/customers/' overlaps data.prefix"):
        ModelSet([("churn.yaml", config)], customers())


def test_given_the_project_then_cdk_json_lists_the_feature_sets_beside_the_models(tmp_path: Path) -> None:
    from tests.feature_store import ROOT

    models = load_models([ROOT / "models" / "breast-cancer.yaml"], [ROOT / "feature_sets"])
    assert models.feature_sets.names == ["customers"]
    assert models.feature_sets.for_object("features/customers/2026-01-01.csv").name == "customers"
    assert load_models([ROOT / "models" / "breast-cancer.yaml"]).feature_sets.names == []
    # a model without feature sets hashes as it did before they existed (its deployed records keep their hash)
    assert "feature_sets" not in churn_config(feature_sets=[]).model_dump(exclude_defaults=True)


def test_given_the_shipped_example_then_the_churn_model_and_the_customers_set_load_together() -> None:
    from tests.feature_store import ROOT, churn_config

    models = load_models([ROOT / "models" / "examples" / "churn.yaml"], [ROOT / "feature_sets"])
    assert [u.name for u in models.get("churn").feature_sets] == ["customers"]
    assert models.get("churn").config_hash() == churn_config().config_hash()  # the tests' model is the example


def test_given_composite_and_integer_keys_then_sql_and_python_name_each_entity_alike(tmp_path: Path) -> None:
    """The online store is keyed by FeatureSetConfig.entity_id (serving), the offline store by entity_sql
    (ingestion, the join): one rule, two languages."""
    import duckdb
    import pandas as pd

    from mlops.data.feature_store import entity_sql, partition_dates_needed

    fs = parse_feature_set(
        {**_raw(), "entity": [{"name": "store", "type": "integer"}, {"name": "sku", "type": "string"}]}, "x"
    )
    rows = [{"store": 42.0, "sku": "a-1"}, {"store": 7, "sku": "7"}]
    pd.DataFrame(rows).to_parquet(tmp_path / "k.parquet")
    sql = duckdb.sql(f"SELECT {entity_sql(fs)} FROM read_parquet('{tmp_path / 'k.parquet'}')").fetchall()
    assert [r[0] for r in sql] == [fs.entity_id(r) for r in rows] == ["42|a-1", "7|7"]
    # the partitions a join can use: none after the last label's date, none older than the TTL before the first
    dates = ["2025-12-01", "2025-12-31", "2026-01-05", "2026-01-20", "2026-01-21"]
    assert partition_dates_needed(dates, "2026-01-10", "2026-01-20", load_feature_set(CUSTOMERS)) == [
        "2025-12-31",
        "2026-01-05",
        "2026-01-20",
    ]
