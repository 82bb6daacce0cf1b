"""EventBridge: the platform's facts (:mod:`mlops.core.facts`) as events on a bus."""

from __future__ import annotations

import json
from typing import Any

from mlops.core.errors import TransientError


class EventBridgePublisher:
    """``PutEvents`` of one fact: source, detail-type and the fact's detail (with the environment's name)."""

    def __init__(self, client: Any, bus: str, source: str, environment: str) -> None:
        self._client, self.bus, self.source, self.environment = client, bus, source, environment

    def entry(self, fact: Any) -> dict[str, Any]:
        detail = fact.model_copy(update={"environment": fact.environment or self.environment}).detail()
        return {
            "Source": self.source,
            "DetailType": fact.detail_type,
            "Detail": json.dumps(detail, separators=(",", ":")),
            "EventBusName": self.bus,
        }

    def publish(self, fact: Any) -> None:
        answer = self._client.put_events(Entries=[self.entry(fact)])
        if answer.get("FailedEntryCount"):
            failed = answer["Entries"][0]
            # a throttle or an internal failure: the step is retried (the fact's id lets subscribers deduplicate)
            raise TransientError(
                f"EventBridge refused {fact.detail_type}: {failed.get('ErrorCode')} {failed.get('ErrorMessage')}"
            )
