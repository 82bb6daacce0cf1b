"""The runtime's reads through the adapters, against moto: a config from an ``s3://`` URI, and a deployment's
catalog of configs from SSM Parameter Store, in batches of ten, refusing a catalog that is not the deployed one."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from mlops.adapters.artifacts import S3ObjectReader
from mlops.adapters.parameters import SsmParameters
from mlops.core.config import ConfigError, config_document, load_config
from mlops.core.errors import TransientError
from mlops.tools.samples import example_config_path
from mlops.wiring.runtime import catalog_document, catalog_hash, load_catalog_parameter, load_config_uri

pytestmark = pytest.mark.functional


@pytest.fixture
def aws():
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def test_given_a_config_in_s3_then_it_loads_and_bad_yaml_names_the_uri(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="configs")
    s3.put_object(Bucket="configs", Key="m.yaml", Body=example_config_path().read_bytes())
    s3.put_object(Bucket="configs", Key="bad.yaml", Body=b"name: [unclosed")
    reader = S3ObjectReader(s3)
    assert load_config_uri("s3://configs/m.yaml", reader).name == "breast-cancer"
    with pytest.raises(ConfigError, match=r"s3://configs/bad\.yaml is not valid YAML"):
        load_config_uri("s3://configs/bad.yaml", reader)


def test_given_a_catalog_of_twelve_models_then_all_load_in_batches_and_a_stale_catalog_is_refused(aws):
    ssm = aws.client("ssm")
    entries = {}
    for i in range(12):  # more than one GetParameters call
        base = load_config(example_config_path())
        data = base.data.model_copy(update={"prefix": f"model-{i:02d}/"})
        config = base.model_copy(update={"name": f"model-{i:02d}", "data": data})
        name = f"/Mlops-dev/config/model-{i:02d}"
        ssm.put_parameter(Name=name, Value=config_document(config), Type="String")
        entries[config.name] = (name, config.config_hash())
    catalog = catalog_document(entries)
    ssm.put_parameter(Name="/Mlops-dev/catalog", Value=catalog, Type="String")
    parameters = SsmParameters(ssm)
    models = load_catalog_parameter("/Mlops-dev/catalog", parameters, expected_hash=catalog_hash(catalog))
    assert models.names == [f"model-{i:02d}" for i in range(12)]
    # A function deployed with another catalog is mid-deployment: a retried TransientError, not other configs.
    with pytest.raises(TransientError, match="deployment is probably in progress"):
        load_catalog_parameter("/Mlops-dev/catalog", parameters, expected_hash="0" * 64)
    ssm.delete_parameter(Name="/Mlops-dev/config/model-07")
    with pytest.raises(TransientError, match="model-07 not found"):
        load_catalog_parameter("/Mlops-dev/catalog", parameters)


def test_given_feature_sets_in_the_catalog_then_they_load_with_the_models_and_a_changed_one_is_refused(aws):
    from mlops.core.feature_sets import feature_set_document
    from tests.feature_store import churn_config, customers

    ssm = aws.client("ssm")
    churn, fs = churn_config(), customers().get("customers")
    ssm.put_parameter(Name="/Mlops-dev/config/churn", Value=config_document(churn), Type="String")
    ssm.put_parameter(Name="/Mlops-dev/feature-sets/customers", Value=feature_set_document(fs), Type="String")
    catalog = catalog_document(
        {"churn": ("/Mlops-dev/config/churn", churn.config_hash())},
        {"customers": ("/Mlops-dev/feature-sets/customers", fs.definition_hash())},
    )
    ssm.put_parameter(Name="/Mlops-dev/catalog", Value=catalog, Type="String")
    models = load_catalog_parameter("/Mlops-dev/catalog", SsmParameters(ssm))
    assert models.feature_sets.get("customers") == fs and models.get("churn").feature_sets[0].name == "customers"
    # a catalog without feature sets is the document it was before they existed (its hash unchanged)
    assert "feature_sets" not in catalog_document({"churn": ("p", "h")})
    changed = fs.model_copy(update={"ttl_hours": 1.0})
    ssm.put_parameter(
        Name="/Mlops-dev/feature-sets/customers", Value=feature_set_document(changed), Type="String", Overwrite=True
    )
    with pytest.raises(TransientError, match="is not the one catalogued for 'customers'"):
        load_catalog_parameter("/Mlops-dev/catalog", SsmParameters(ssm))
