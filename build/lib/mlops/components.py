"""Your own ML code in the pipeline: feature components and model components (public API).

A **feature component** is a scikit-learn transformer that adds columns before the built-in preprocessing
(imputation, scaling, one-hot encoding), and the same computation as ONNX nodes, so it is part of the graph that
serves. Subclass :class:`FeatureComponent`, set its parameters in ``__init__`` (scikit-learn's rule: stored as
given, nothing computed), and say:

- ``input_columns()``: the raw columns it reads (what a request sends);
- ``output_columns()``: the columns it adds, each ``"numeric"`` or ``"categorical"``;
- ``compute(X)``: the new columns from ``X[input_columns()]`` — numeric inputs arrive as float32 with NaN for
  missing, categorical ones as text with ``""`` for missing, exactly as the ONNX graph receives them;
- ``onnx(x, op)``: the same from ONNX nodes: ``x`` maps each input column to its graph variable, ``op`` builds
  operators at the export's opset (``op.Div(a, b)``, ``op.Where(cond, a, b)``; numbers and arrays are constants via
  ``op.const``); return the output columns' nodes by name.

Learned state (a mean, a vocabulary) is set in ``fit`` in attributes ending in ``_``, as scikit-learn does, and read
by both ``compute`` and ``onnx``::

    class Ratio(FeatureComponent):
        def __init__(self, num: str = "amount", den: str = "income", name: str = "ratio") -> None:
            self.num, self.den, self.name = num, den, name

        def input_columns(self) -> list[str]:
            return [self.num, self.den]

        def output_columns(self) -> dict[str, str]:
            return {self.name: "numeric"}

        def compute(self, X):
            den = X[self.den].to_numpy()
            return {self.name: np.where(den == 0, np.nan, X[self.num].to_numpy() / den)}

        def onnx(self, x, op):
            den = x[self.den]
            return {self.name: op.Where(op.Equal(den, op.const(0.0)), op.const(np.nan), op.Div(x[self.num], den))}

A model lists its feature components in order, each with its parameters (``features.steps`` in its YAML)::

    features:
      steps:
        - component: components.features:Ratio
          params: {num: amount, den: income, name: amount_to_income}
        - component: components.features:TimestampParts
          params: {column: signup_at}
          drop_inputs: true    # the raw timestamp is not a feature itself

A **model component** is an estimator class named by import path as a candidate's ``family``
(``components.models:MyRidge``), tuned like a built-in family. Its ONNX conversion is the one skl2onnx knows for
it or for the scikit-learn class it derives from; for anything else, register a converter with
:func:`register_model_converter` (skl2onnx's shape calculator and converter functions, as in its "Implement a new
converter" tutorial).

Check a component before it reaches a pipeline: ``mlops component check components.features:Ratio --data
sample.csv`` or, in the project's own tests, :func:`mlops.testing.check_component`. The run's parity gate (ONNX
against scikit-learn, row by row, on held-out data) stands behind both; a component that cannot be converted fails
the run at export, naming it.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from mlops.core import config

__all__ = [
    "ComponentError",
    "FeatureComponent",
    "Ops",
    "component_problems",
    "load",
    "provenance",
    "register_model_converter",
]

IMPORT_PATH = re.compile(config.IMPORT_PATH)
KINDS = ("numeric", "categorical")


class ComponentError(ValueError):
    """A component that cannot be loaded, built or used: the message names it and the rule it broke."""


class Ops:
    """ONNX operators at the export's opset, for :meth:`FeatureComponent.onnx`: ``op.Div(a, b)`` builds skl2onnx's
    ``OnnxDiv(a, b, op_version=opset)``; any ONNX operator by its name. Inputs are graph variables, other nodes, or
    constants (:meth:`const`)."""

    def __init__(self, opset: int) -> None:
        self.opset = opset

    @staticmethod
    def const(value: Any, dtype: Any = np.float32) -> np.ndarray:
        """A constant tensor (a number becomes a one-element array of ``dtype``: float32 by default, as the graph's
        numeric columns are)."""
        return np.asarray(value, dtype=dtype).reshape(-1) if np.ndim(value) == 0 else np.asarray(value, dtype=dtype)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        from skl2onnx.algebra import onnx_ops

        cls = getattr(onnx_ops, f"Onnx{name}", None)
        if cls is None:
            raise AttributeError(f"no ONNX operator {name!r} (see https://onnx.ai/onnx/operators/)")

        def build(*inputs: Any, **attributes: Any) -> Any:
            return cls(*inputs, op_version=self.opset, **attributes)

        return build


class FeatureComponent(TransformerMixin, BaseEstimator):
    """Base class of a feature component (see the module's documentation): it adds ``output_columns()`` computed from
    ``input_columns()`` to the frame it transforms, in scikit-learn and in ONNX alike."""

    #: The ONNX opset its ``onnx`` needs (string splitting and regular expressions: 20); a pipeline holding it is
    #: exported at that opset or above.
    min_opset: ClassVar[int] = 0

    def input_columns(self) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} must say which columns it reads (input_columns)")

    def output_columns(self) -> dict[str, str]:
        raise NotImplementedError(f"{type(self).__name__} must say which columns it adds (output_columns)")

    def compute(self, X: pd.DataFrame) -> Any:
        """The new columns (a mapping or a frame, each of ``len(X)`` values) from ``X[input_columns()]``."""
        raise NotImplementedError(f"{type(self).__name__} must compute its columns (compute)")

    def onnx(self, x: dict[str, Any], op: Ops) -> dict[str, Any]:
        """The same columns from ONNX nodes (see :class:`Ops`)."""
        raise NotImplementedError(f"{type(self).__name__} has no ONNX form (onnx): it cannot be served")

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureComponent:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with the output columns added (numeric as float32 with NaN, categorical as text with ``""``: what the
        graph computes), replacing any of the same name."""
        new = self.compute(X[self.input_columns()])
        columns = dict(new.items()) if isinstance(new, pd.DataFrame) else dict(new)
        out = {}
        for name, kind in self.output_columns().items():
            if name not in columns:
                raise ComponentError(f"{type(self).__name__}.compute did not return its output column {name!r}")
            values = np.asarray(columns[name])
            if values.shape[:1] != (len(X),):
                raise ComponentError(
                    f"{type(self).__name__}.compute returned {values.shape[:1]} values for {name!r}, not {len(X)}"
                )
            out[name] = as_kind(values.reshape(len(X)), kind)
        return X.assign(**{k: pd.Series(v, index=X.index) for k, v in out.items()})


def as_kind(values: np.ndarray, kind: str) -> np.ndarray:
    """Values as the graph holds a column of ``kind``: float32 (NaN for missing) or text (``""`` for missing)."""
    if kind == "numeric":
        return np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=np.float32)
    text = pd.Series(values, dtype=object)
    return np.array(["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in text], dtype=object)


def load(path: str) -> type:
    """The class an import path (``package.module:Class``) names."""
    if not IMPORT_PATH.match(path):
        raise ComponentError(f"{path!r} is not an import path: write 'package.module:Class'")
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ComponentError(
            f"cannot import {module_name!r} for {path}: {err} (is the project's components/ package beside models/, "
            "with an __init__.py?)"
        ) from None
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        raise ComponentError(f"{module_name} has no class {attr!r} ({path})")
    return cls


def provenance(obj: Any) -> dict[str, Any]:
    """What the lineage records of a component: its import path, parameters and the sha256 of the source file that
    defines its class (None where no source ships)."""
    cls = type(obj)
    try:
        source = inspect.getsourcefile(cls)
        digest = hashlib.sha256(open(source, "rb").read()).hexdigest() if source else None  # noqa: SIM115
    except (OSError, TypeError):
        digest = None
    params = obj.get_params(deep=False) if hasattr(obj, "get_params") else {}
    return {"component": f"{cls.__module__}:{cls.__qualname__}", "params": _plain(params), "sha256": digest}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, str | int | float | bool) or value is None else repr(value)


def register_model_converter(
    cls: type,
    shape_calculator: Callable[[Any], None],
    converter: Callable[[Any, Any, Any], None],
    *,
    options: dict[str, Any] | None = None,
) -> None:
    """Teach the export a model component skl2onnx does not know (nor any class it derives from): skl2onnx's
    ``update_registered_converter`` with an alias of ours. ``shape_calculator(operator)`` and ``converter(scope,
    operator, container)`` are skl2onnx's own signatures (its tutorial "Implement a new converter"); a classifier
    should accept the ``zipmap`` option (the export asks for plain probabilities)."""
    from skl2onnx import update_registered_converter

    update_registered_converter(
        cls, f"Mlops{cls.__module__.replace('.', '_')}_{cls.__qualname__}", shape_calculator, converter, options=options
    )


def component_problems(models: Any, project_root: Any = None) -> list[str]:
    """Each component a project's models name that does not import (with the project's folder on the path, as the
    pipeline imports it): what synthesis and `mlops config check` refuse, naming the file and field."""
    import sys

    if project_root is not None and str(project_root) not in sys.path:
        sys.path.insert(0, str(project_root))
    problems = []
    for name, model in models.configs.items():
        named = [(f"features.steps[{i}].component", s.component) for i, s in enumerate(model.features.steps)]
        named += [
            (f"training.candidates[{i}].family", c.family)
            for i, c in enumerate(model.training.candidates)
            if ":" in c.family
        ]
        for field, path in named:
            try:
                load(path)
            except ComponentError as err:
                problems.append(f"{models.sources[name]}: {field}: {err}")
    return problems
