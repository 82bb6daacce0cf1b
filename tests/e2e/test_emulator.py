"""The emulator under concurrency: moto's backends are not thread-safe, so requests are serialized."""

from __future__ import annotations

import threading

import pytest

from mlops.local.emulator import LocalCloud
from mlops.tools.samples import example_config_path

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_given_many_concurrent_writers_to_one_item_then_every_write_lands_and_none_fails():
    """The stress loop behind a once-in-twenty CI failure: concurrent UpdateItem on one run record."""
    import os

    before = dict(os.environ)
    with LocalCloud(example_config_path(), port=0) as cloud:
        table = (
            cloud.session()
            .resource("dynamodb", endpoint_url=cloud.endpoint)
            .Table(cloud.p.outputs["Mlops-dev-Storage"]["RunsTable"])
        )
        table.put_item(Item={"pk": "m", "sk": "RUN#1", "steps": {}})
        errors: list[BaseException] = []

        def writer(w: int) -> None:
            local = cloud.session().resource("dynamodb", endpoint_url=cloud.endpoint).Table(table.name)
            for i in range(60):
                try:
                    local.update_item(
                        Key={"pk": "m", "sk": "RUN#1"},
                        UpdateExpression="SET #s.#k = :v, #a = :v",
                        ExpressionAttributeNames={"#s": "steps", "#k": f"w{w}-{i}", "#a": f"a{w}-{i}"},
                        ExpressionAttributeValues={":v": {"status": "SUCCEEDED", "i": i}},
                    )
                except BaseException as err:  # noqa: BLE001 — any failure in the thread is collected for the assertion
                    errors.append(err)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        item = table.get_item(Key={"pk": "m", "sk": "RUN#1"}, ConsistentRead=True)["Item"]
        assert errors == []
        assert len(item["steps"]) == 8 * 60
    assert dict(os.environ) == before  # nothing of the emulated account outlives it (resource names, endpoint)
