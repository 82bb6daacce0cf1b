"""The online store over DynamoDB: one item per (feature set, entity) holding its latest values.

Key ``pk`` = the feature set, ``sk`` = the entity (:data:`mlops.core.constants.FEATURES_TABLE`); ``event_time``
(epoch seconds) guards every write (an older row never overwrites a newer one), ``expires_at`` is the table's TTL
attribute, ``values`` the features as JSON text (no Decimal round trip, one attribute however many features).
Reads are ``BatchGetItem``s of at most 100 keys, unprocessed keys retried: what the serve function may call."""

from __future__ import annotations

import json
import time
from typing import Any

from mlops.core.constants import FEATURES_TABLE, FEATURES_TTL_ATTRIBUTE
from mlops.core.ports import OnlineValue

BATCH_GET_LIMIT = 100  # DynamoDB's most keys in one BatchGetItem


class DynamoOnlineStore:
    def __init__(self, client: Any, table: str) -> None:
        self._client, self._table = client, table

    def put_latest(self, feature_set: str, value: OnlineValue, ingested_at: str) -> bool:
        pk, sk = FEATURES_TABLE.partition_key, FEATURES_TABLE.sort_key
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    pk: {"S": feature_set},
                    sk: {"S": value.entity},
                    "event_time": {"N": repr(value.event_time)},
                    FEATURES_TTL_ATTRIBUTE: {"N": str(value.expires_at)},
                    "values": {"S": json.dumps(value.values, separators=(",", ":"))},
                    "ingested_at": {"S": ingested_at},
                },
                ConditionExpression="attribute_not_exists(#sk) OR event_time < :t",
                ExpressionAttributeNames={"#sk": sk},
                ExpressionAttributeValues={":t": {"N": repr(value.event_time)}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get_many(self, feature_set: str, entities: list[str]) -> dict[str, OnlineValue]:
        pk, sk = FEATURES_TABLE.partition_key, FEATURES_TABLE.sort_key
        found: dict[str, OnlineValue] = {}
        unique = list(dict.fromkeys(entities))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [{pk: {"S": feature_set}, sk: {"S": e}} for e in unique[start : start + BATCH_GET_LIMIT]],
                    "ProjectionExpression": "#sk, event_time, #ttl, #v",
                    "ExpressionAttributeNames": {"#sk": sk, "#ttl": FEATURES_TTL_ATTRIBUTE, "#v": "values"},
                }
            }
            for attempt in range(8):
                answer = self._client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self._table, []):
                    found[item[sk]["S"]] = OnlineValue(
                        entity=item[sk]["S"],
                        event_time=float(item["event_time"]["N"]),
                        expires_at=int(float(item[FEATURES_TTL_ATTRIBUTE]["N"])),
                        values=json.loads(item["values"]["S"]),
                    )
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))  # throttled: back off, as the SDKs advise
            else:
                raise RuntimeError(f"online store: keys still unprocessed after retries ({feature_set})")
        return found
