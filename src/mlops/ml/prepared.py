"""The prepared dataset as later steps see it: task, feature kinds, classes and the three splits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.core.artifact_io import get_json, get_verified
from mlops.core.config import FeatureType, Task
from mlops.core.ports import ArtifactRefDict, ArtifactStore

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class Dataset:
    task: Task
    target: str
    kinds: dict[str, FeatureType]
    classes: list[Any] | None
    splits: dict[str, dict[str, Any]]
    schema: dict[str, Any]
    rows: dict[str, int] | None = None

    def scored(self, split: str) -> str:
        """The file a step that scores ``split`` in one function reads: its sample where prepare wrote one (a run
        whose training split outgrew a Lambda), else the split."""
        return f"{split}_sample" if f"{split}_sample" in self.splits else split

    def load(self, store: ArtifactStore, split: str) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
        """(raw frame, model input frame, labels) of one split."""
        # Imported here: the export function's bundle has no Parquet reader and never loads splits.
        from mlops.data.frames import from_parquet_bytes
        from mlops.ml.models import model_frame

        raw = from_parquet_bytes(get_verified(store, self.splits[split]))
        y = raw[self.target].to_numpy()
        if self.task is Task.REGRESSION:
            y = y.astype(float)
        return raw, model_frame(raw, self.kinds), y


def load_dataset(store: ArtifactStore, ref: ArtifactRefDict) -> Dataset:
    d = get_json(store, ref["uri"])
    return Dataset(
        task=Task(d["task"]),
        target=d["target"],
        kinds={c: FeatureType(k) for c, k in d["features"].items()},
        classes=d.get("classes"),
        splits=d["splits"],
        schema=d["schema"],
        rows=d.get("rows"),
    )
