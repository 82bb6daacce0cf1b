"""An upload deleted between landing and the run reading it: the run fails naming the object and what happened,
not with botocore's ``ClientError … HeadObject … Not Found``."""

from __future__ import annotations

import pytest

from mlops.core.errors import SourceObjectMissingError
from mlops.steps.extract import extract
from mlops.tools.samples import bundled

pytestmark = pytest.mark.functional

BODY = bundled("breast-cancer").head(60).to_csv(index=False).encode()


def test_given_an_upload_deleted_before_the_run_reads_it_then_extract_fails_naming_it(
    account, quick_breast_cancer_config
):
    source = account.upload("breast-cancer/gone.csv", BODY)
    account.session.client("s3").delete_object(Bucket=source["bucket"], Key="breast-cancer/gone.csv")
    ctx = account.context(quick_breast_cancer_config, {"reason": "s3_upload", "key": "breast-cancer/gone.csv"})
    with pytest.raises(SourceObjectMissingError) as raised:
        extract(ctx, source=source)
    message = str(raised.value)
    assert f"s3://{source['bucket']}/breast-cancer/gone.csv" in message
    assert "deleted before the run read it" in message
    step = account.stores.meta.get_run(ctx.model, ctx.run_id)["steps"]["extract"]
    assert step["status"] == "FAILED" and step["error"]["type"] == "SourceObjectMissingError"


def test_given_a_pinned_version_removed_before_it_is_read_then_the_reader_names_the_version(account):
    from mlops.core.ports import ObjectInfo

    s3 = account.session.client("s3")
    bucket = account.resources.landing_bucket
    put = s3.put_object(Bucket=bucket, Key="breast-cancer/v.csv", Body=BODY)
    s3.delete_object(Bucket=bucket, Key="breast-cancer/v.csv", VersionId=put["VersionId"])
    pinned = ObjectInfo(bucket=bucket, key="breast-cancer/v.csv", size=len(BODY), etag="", version_id=put["VersionId"])
    with pytest.raises(SourceObjectMissingError, match=f"version {put['VersionId']} of s3://{bucket}/breast-cancer/v"):
        account.stores.reader.read(pinned)


def test_given_one_of_a_coalesced_runs_uploads_deleted_then_the_run_names_it_and_goes_on_with_the_others(
    account, quick_breast_cancer_config
):
    keys = [f"breast-cancer/part-{i}.csv" for i in range(3)]
    for key in keys:
        source = account.upload(key, BODY)
    account.session.client("s3").delete_object(Bucket=source["bucket"], Key=keys[1])
    ctx = account.context(quick_breast_cancer_config, {"reason": "coalesced"})
    out = extract(ctx, source={"bucket": source["bucket"], "keys": keys})
    assert out.objects == 2 and out.rows == 120
    (gone,) = account.stores.meta.get_run(ctx.model, ctx.run_id)["missing"]
    assert gone["key"] == keys[1] and "deleted before the run read it" in gone["message"]
    assert not account.stores.meta.quarantined(ctx.model)  # nothing to set aside: it is not there
