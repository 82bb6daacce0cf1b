"""Components that break one rule each (imported as tests.bad_components:<Name>, with the starter project's
components/ on the path — the `starter_components` fixture)."""

from __future__ import annotations

from typing import Any

import numpy as np
from components.features import Ratio  # type: ignore[import-not-found]


class Noisy(Ratio):  # type: ignore[misc]
    """Adds noise: two fits (or two transforms) answer otherwise."""

    def compute(self, X: Any) -> dict[str, Any]:
        out = super().compute(X)
        return {self.name: out[self.name] + np.random.default_rng().normal(size=len(X)).astype(np.float32)}


class Product(Ratio):  # type: ignore[misc]
    """Serves num * den where it trained on num / den."""

    def onnx(self, x: dict[str, Any], op: Any) -> dict[str, Any]:
        return {self.name: op.Mul(x[self.num], x[self.den])}


class Unservable(Ratio):  # type: ignore[misc]
    def onnx(self, x: dict[str, Any], op: Any) -> dict[str, Any]:
        raise NotImplementedError("Unservable has no ONNX form")
