"""The metadata store: run records, the model registry, schemas and lineage in DynamoDB.

Three tables share one key shape (``pk``/``sk`` strings, see :mod:`mlops.core.constants`):

* runs     — ``pk=<model>``: ``RUN#<run_id>`` records, a ``LOCK`` item, ``PENDING#…`` deferred triggers
* models   — ``pk=<model>``: ``VERSION#000001``, ``ALIAS#champion``, ``HISTORY#<ts>#…``, ``SCHEMA#0001``,
             ``COUNTER#…``
* lineage  — ``pk=RUN#<run_id>`` / ``EXECUTION#<step>`` and ``pk=ARTIFACT#<sha256>`` / ``USED_BY#…``
             (ML Metadata's executions, artifacts and events, flattened)
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from mlops.core.clock import utcnow_iso


def to_dynamo(value: Any) -> Any:
    """JSON-like value → DynamoDB-safe value (floats as Decimal, NaN/inf dropped to None)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float):
            return None if not math.isfinite(v) else v
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.loads(json.dumps(clean(value), default=str), parse_float=Decimal)


def from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


def version_sk(version: int) -> str:
    return f"VERSION#{version:06d}"


class DynamoMetadataStore:
    """MetadataStore over three DynamoDB tables (boto3 resource API)."""

    def __init__(self, resource: Any, runs_table: str, models_table: str, lineage_table: str) -> None:
        self._runs = resource.Table(runs_table)
        self._models = resource.Table(models_table)
        self._lineage = resource.Table(lineage_table)
        self._client = resource.meta.client

    # -- runs -----------------------------------------------------------------
    def put_run(self, record: dict[str, Any]) -> None:
        item = {"pk": record["model"], "sk": f"RUN#{record['run_id']}", **record}
        item.setdefault("steps", {})
        item.setdefault("trials", {})
        self._runs.put_item(Item=to_dynamo(item))

    def get_run(self, model: str, run_id: str) -> dict[str, Any] | None:
        item = self._runs.get_item(Key={"pk": model, "sk": f"RUN#{run_id}"}).get("Item")
        return from_dynamo(item) if item else None

    def update_run(self, model: str, run_id: str, fields: dict[str, Any]) -> None:
        self._update(model, f"RUN#{run_id}", fields)

    def _update(self, model: str, sk: str, fields: dict[str, Any]) -> None:
        if not fields:
            return
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": to_dynamo(v) for i, v in enumerate(fields.values())}
        expr = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        self._runs.update_item(
            Key={"pk": model, "sk": sk},
            UpdateExpression=expr,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    # -- batch scoring jobs: beside the model's runs, JOB#<job_id> --------------------------------------------
    def put_job(self, record: dict[str, Any]) -> None:
        self._runs.put_item(Item=to_dynamo({"pk": record["model"], "sk": f"JOB#{record['job_id']}", **record}))

    def get_job(self, model: str, job_id: str) -> dict[str, Any] | None:
        item = self._runs.get_item(Key={"pk": model, "sk": f"JOB#{job_id}"}, ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def update_job(self, model: str, job_id: str, fields: dict[str, Any]) -> None:
        self._update(model, f"JOB#{job_id}", fields)

    def list_jobs(self, model: str, limit: int = 50) -> list[dict[str, Any]]:
        resp = self._runs.query(
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues={":p": model, ":s": "JOB#"},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [from_dynamo(i) for i in resp.get("Items", [])]

    def record_step(self, model: str, run_id: str, step: str, info: dict[str, Any], section: str = "steps") -> None:
        """Set ``<section>.<step>`` (steps or trials) on a run record, which must exist."""
        self._runs.update_item(
            Key={"pk": model, "sk": f"RUN#{run_id}"},
            UpdateExpression="SET #sec.#s = :v, updated_at = :t",
            ConditionExpression="attribute_exists(sk)",
            ExpressionAttributeNames={"#sec": section, "#s": step},
            ExpressionAttributeValues={":v": to_dynamo(info), ":t": utcnow_iso()},
        )

    def list_runs(self, model: str, limit: int = 50) -> list[dict[str, Any]]:
        resp = self._runs.query(
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues={":p": model, ":s": "RUN#"},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [from_dynamo(i) for i in resp.get("Items", [])]

    def delete_run(self, model: str, run_id: str) -> None:
        self._runs.delete_item(Key={"pk": model, "sk": f"RUN#{run_id}"})

    # -- trigger control: de-duplication, the per-model run lock, deferred triggers ------------
    def claim(self, model: str, sk: str, item: dict[str, Any]) -> dict[str, Any] | None:
        """Write ``item`` at (model, sk) unless it exists; return the existing item if it does."""
        try:
            self._runs.put_item(
                Item=to_dynamo({"pk": model, "sk": sk, **item}), ConditionExpression="attribute_not_exists(sk)"
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            existing = self._runs.get_item(Key={"pk": model, "sk": sk}, ConsistentRead=True).get("Item")
            return from_dynamo(existing) if existing else {}
        return None

    def release_claim(self, model: str, sk: str, run_id: str) -> bool:
        """Delete a claim this trigger made (never another's): its start failed, so a retry may claim again."""
        return self._delete_if(self._runs, {"pk": model, "sk": sk}, "run_id = :r", {":r": run_id})

    def _delete_if(self, table: Any, key: dict[str, str], condition: str, values: dict[str, Any]) -> bool:
        try:
            table.delete_item(Key=key, ConditionExpression=condition, ExpressionAttributeValues=values)
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def acquire_lock(self, model: str, holder: dict[str, Any], now: int) -> dict[str, Any] | None:
        """Take the model's run lock (free or expired); return the current holder if it is taken."""
        return self.acquire_lease(model, "LOCK", holder, now)

    def release_lock(self, model: str, run_id: str) -> bool:
        return self.release_lease(model, "LOCK", run_id)

    def acquire_lease(self, model: str, sk: str, holder: dict[str, Any], now: int) -> dict[str, Any] | None:
        """Take the lease at (model, sk) if it is free or its ``expires_at`` has passed; else return its holder.
        The run lock and the alarm cooldown are leases."""
        try:
            self._runs.put_item(
                Item=to_dynamo({"pk": model, "sk": sk, **holder}),
                ConditionExpression="attribute_not_exists(sk) OR expires_at < :now",
                ExpressionAttributeValues={":now": now},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            item = self._runs.get_item(Key={"pk": model, "sk": sk}, ConsistentRead=True).get("Item")
            return from_dynamo(item) if item else {}
        return None

    def release_lease(self, model: str, sk: str, run_id: str) -> bool:
        return self._delete_if(self._runs, {"pk": model, "sk": sk}, "run_id = :r", {":r": run_id})

    def quarantine(self, model: str, record: dict[str, Any]) -> None:
        """Set an object aside (``record`` has bucket, key, etag, run_id, reason): prefix runs skip it."""
        self._runs.put_item(
            Item=to_dynamo({"pk": model, "sk": f"QUARANTINE#{record['bucket']}/{record['key']}", **record})
        )

    def quarantined(self, model: str) -> dict[str, dict[str, Any]]:
        """Quarantined objects by ``bucket/key``."""
        return {i["sk"].removeprefix("QUARANTINE#"): i for i in self._query_prefix(self._runs, model, "QUARANTINE#")}

    def release_quarantine(self, model: str, bucket_key: str) -> bool:
        """Let prefix and scheduled runs read a quarantined object again (``bucket/key``); False if it was not."""
        try:
            self._runs.delete_item(
                Key={"pk": model, "sk": f"QUARANTINE#{bucket_key}"}, ConditionExpression="attribute_exists(sk)"
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def add_pending(self, model: str, record: dict[str, Any]) -> None:
        self._runs.put_item(Item=to_dynamo({"pk": model, "sk": f"PENDING#{record['at']}#{record['name']}", **record}))

    def take_pending(self, model: str) -> list[dict[str, Any]]:
        """Remove and return the deferred triggers, oldest first (each removed at most once)."""
        taken = []
        for item in self._query_prefix(self._runs, model, "PENDING#"):
            try:
                self._runs.delete_item(Key={"pk": model, "sk": item["sk"]}, ConditionExpression="attribute_exists(sk)")
            except self._client.exceptions.ConditionalCheckFailedException:
                continue
            taken.append(item)
        return taken

    # -- registry -------------------------------------------------------------
    def next_counter(self, model: str, name: str) -> int:
        resp = self._models.update_item(
            Key={"pk": model, "sk": f"COUNTER#{name}"},
            UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": "value"},
            ExpressionAttributeValues={":one": 1},
            ReturnValues="UPDATED_NEW",
        )
        return int(resp["Attributes"]["value"])

    def put_model_version(self, record: dict[str, Any]) -> None:
        item = {"pk": record["model"], "sk": version_sk(record["version"]), **record}
        self._models.put_item(Item=to_dynamo(item), ConditionExpression="attribute_not_exists(sk)")

    def update_model_version(self, model: str, version: int, fields: dict[str, Any]) -> None:
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": to_dynamo(v) for i, v in enumerate(fields.values())}
        self._models.update_item(
            Key={"pk": model, "sk": version_sk(version)},
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ConditionExpression="attribute_exists(sk)",
        )

    def get_model_version(self, model: str, version: int) -> dict[str, Any] | None:
        item = self._models.get_item(Key={"pk": model, "sk": version_sk(version)}).get("Item")
        return from_dynamo(item) if item else None

    def _query_prefix(self, table: Any, pk: str, prefix: str, forward: bool = True) -> list[dict[str, Any]]:
        """Every item of partition ``pk`` whose sort key starts with ``prefix`` (all of them for ``""``: DynamoDB
        refuses an empty key value in a condition)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)" if prefix else "pk = :p",
            "ExpressionAttributeValues": {":p": pk, ":s": prefix} if prefix else {":p": pk},
            "ScanIndexForward": forward,
        }
        while True:
            resp = table.query(**kwargs)
            items.extend(from_dynamo(i) for i in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def list_model_versions(self, model: str) -> list[dict[str, Any]]:
        return self._query_prefix(self._models, model, "VERSION#")

    def get_alias(self, model: str, alias: str) -> int | None:
        item = self._models.get_item(Key={"pk": model, "sk": f"ALIAS#{alias}"}).get("Item")
        return int(item["version"]) if item else None

    def get_alias_item(self, model: str, alias: str) -> dict[str, Any] | None:
        """The alias with what it carries besides the version (a challenger's ``mode`` and ``percent``)."""
        item = self._models.get_item(Key={"pk": model, "sk": f"ALIAS#{alias}"}).get("Item")
        return from_dynamo(item) if item else None

    def _history_put(self, model: str, alias: str, version: int, history: dict[str, Any]) -> dict[str, Any]:
        item = {"pk": model, "sk": f"HISTORY#{history['at']}#{alias}#{version:06d}", **history}
        return {
            "Put": {
                "TableName": self._models.name,
                "Item": to_dynamo({**item, "alias": alias, "version": version}),
                "ConditionExpression": "attribute_not_exists(sk)",
            }
        }

    def clear_alias(self, model: str, alias: str, version: int, history: dict[str, Any]) -> bool:
        """Remove an alias still at ``version`` and append its history record, in one transaction; False if the
        alias had moved or was already gone (a concurrent withdrawal)."""
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self._models.name,
                            "Key": to_dynamo({"pk": model, "sk": f"ALIAS#{alias}"}),
                            "ConditionExpression": "version = :v",
                            "ExpressionAttributeValues": to_dynamo({":v": version}),
                        }
                    },
                    self._history_put(model, alias, version, history),
                ]
            )
        except self._client.exceptions.TransactionCanceledException:
            return False
        return True

    def set_alias(
        self, model: str, alias: str, version: int, history: dict[str, Any], fields: dict[str, Any] | None = None
    ) -> None:
        """Move an alias (with ``fields`` it carries) and append its history record in one transaction.

        The resource's client serializes Python values itself, so items are passed unserialized.
        """
        table = self._models.name
        history_item = {
            "pk": model,
            "sk": f"HISTORY#{history['at']}#{alias}#{version:06d}",
            **history,
            "alias": alias,
            "version": version,
        }
        alias_item = {
            "pk": model,
            "sk": f"ALIAS#{alias}",
            **(fields or {}),
            "version": version,
            "updated_at": history["at"],
        }
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": to_dynamo(alias_item),
                    }
                },
                {
                    "Put": {
                        "TableName": table,
                        "Item": to_dynamo(history_item),
                        "ConditionExpression": "attribute_not_exists(sk)",
                    }
                },
            ]
        )

    def alias_history(self, model: str) -> list[dict[str, Any]]:
        return self._query_prefix(self._models, model, "HISTORY#")

    def put_schema_version(self, model: str, version: int, record: dict[str, Any]) -> None:
        item = {"pk": model, "sk": f"SCHEMA#{version:04d}", "version": version, **record}
        self._models.put_item(Item=to_dynamo(item), ConditionExpression="attribute_not_exists(sk)")

    def latest_schema(self, model: str) -> dict[str, Any] | None:
        resp = self._models.query(
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues={":p": model, ":s": "SCHEMA#"},
            ScanIndexForward=False,
            Limit=1,
        )
        items = resp.get("Items", [])
        return from_dynamo(items[0]) if items else None

    def schema_versions(self, model: str) -> list[dict[str, Any]]:
        return self._query_prefix(self._models, model, "SCHEMA#")

    # -- lineage --------------------------------------------------------------
    def put_execution(self, run_id: str, step: str, record: dict[str, Any]) -> None:
        with self._lineage.batch_writer() as batch:
            batch.put_item(Item=to_dynamo({"pk": f"RUN#{run_id}", "sk": f"EXECUTION#{step}", **record}))
            for role in ("inputs", "outputs"):
                for name, ref in record.get(role, {}).items():
                    if isinstance(ref, dict) and ref.get("sha256"):
                        batch.put_item(
                            Item=to_dynamo(
                                {
                                    "pk": f"ARTIFACT#{ref['sha256']}",
                                    "sk": f"{role.upper()[:-1]}#{run_id}#{step}#{name}",
                                    "uri": ref.get("uri"),
                                    "run_id": run_id,
                                    "step": step,
                                    "name": name,
                                }
                            )
                        )

    def executions(self, run_id: str) -> list[dict[str, Any]]:
        return self._query_prefix(self._lineage, f"RUN#{run_id}", "EXECUTION#")

    def artifact_uses(self, sha256: str) -> list[dict[str, Any]]:
        return self._query_prefix(self._lineage, f"ARTIFACT#{sha256}", "")
