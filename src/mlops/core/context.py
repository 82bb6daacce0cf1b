"""What every step needs: the run's identity, the config and the stores."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops.core.config import ProjectConfig
from mlops.core.constants import RUNS_PREFIX
from mlops.core.feature_sets import FeatureSets
from mlops.core.ports import ArtifactStore, EventPublisher, MetadataStore, NoEvents, ObjectReader, OnlineStore


@dataclass(frozen=True)
class Stores:
    artifacts: ArtifactStore
    meta: MetadataStore
    reader: ObjectReader
    landing_bucket: str | None = None
    events: EventPublisher = field(default_factory=NoEvents)  # the facts, once durable (mlops.core.facts)
    online: OnlineStore | None = None  # the feature store's online table (the functions given one)


@dataclass(frozen=True)
class StepContext:
    run_id: str
    config: ProjectConfig
    stores: Stores
    feature_sets: FeatureSets = field(default_factory=FeatureSets)  # the deployment's, for a model using them

    @property
    def model(self) -> str:
        return self.config.name

    def key(self, step: str, name: str) -> str:
        """Artifact key of ``name`` written by ``step`` in this run."""
        return f"{RUNS_PREFIX}{self.run_id}/{step}/{name}"
