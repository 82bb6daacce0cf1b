"""A model's feature components in its pipeline, and in its ONNX graph.

:class:`FeatureSteps` is the pipeline's first step when the model lists ``features.steps``: each component in turn
adds its columns to the frame, then the inputs marked ``drop_inputs`` leave it, and the built-in preprocessing
picks its columns from what is left by name. In ONNX the same happens through skl2onnx's own extension points
(``update_registered_converter`` with a parser): :func:`parse_feature_steps` declares one operator per component,
reading the graph variables of its input columns and declaring one for each output column under the column's name
— which is how skl2onnx's ColumnTransformer finds its columns — and :func:`convert_component` adds the nodes the
component's ``onnx`` builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from mlops.components import ComponentError, FeatureComponent, Ops, load
from mlops.core.config import FeatureType

if TYPE_CHECKING:
    from mlops.core.config import FeatureStep


class FeatureSteps(TransformerMixin, BaseEstimator):
    """The feature components in order, then the inputs ``drop`` names removed."""

    def __init__(self, steps: Sequence[FeatureComponent] = (), drop: Sequence[str] = ()) -> None:
        self.steps = steps
        self.drop = drop

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureSteps:
        for step in self.steps:
            X = step.fit(X, y).transform(X)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        for step in self.steps:
            X = step.transform(X)
        return X.drop(columns=[c for c in self.drop if c in X.columns])

    def kinds(self, raw: dict[str, FeatureType]) -> dict[str, FeatureType]:
        """The columns the preprocessing sees: the raw ones not dropped, then each component's outputs."""
        out = {c: k for c, k in raw.items() if c not in set(self.drop)}
        for step in self.steps:
            out.update({c: FeatureType(k) for c, k in step.output_columns().items()})
        return out


def feature_steps(specs: Sequence[FeatureStep], raw: dict[str, FeatureType]) -> FeatureSteps:
    """The components a model's ``features.steps`` name, built with their parameters and checked against the columns
    they read: each must find its inputs among the raw columns or an earlier component's outputs."""
    steps: list[FeatureComponent] = []
    drop: list[str] = []
    available = dict(raw)
    for i, spec in enumerate(specs):
        where = f"features.steps[{i}] ({spec.component})"
        cls = load(spec.component)
        if not issubclass(cls, FeatureComponent):
            raise ComponentError(f"{where}: {cls.__name__} is not a mlops.components.FeatureComponent")
        try:
            step = cls(**spec.params)
        except TypeError as err:
            raise ComponentError(f"{where}: {err}") from None
        try:
            inputs, outputs = list(step.input_columns()), dict(step.output_columns())
        except NotImplementedError as err:
            raise ComponentError(f"{where}: {err}") from None
        missing = [c for c in inputs if c not in available]
        if missing:
            raise ComponentError(
                f"{where} reads {missing}, which the data does not have (nor an earlier step makes); it has "
                f"{sorted(available)[:12]}"
            )
        bad = {c: k for c, k in outputs.items() if k not in ("numeric", "categorical")}
        if bad:
            raise ComponentError(f"{where}: output_columns kinds must be 'numeric' or 'categorical', not {bad}")
        available.update({c: FeatureType(k) for c, k in outputs.items()})
        steps.append(step)
        if spec.drop_inputs:
            drop.extend(c for c in inputs if c in raw and c not in drop)
    return FeatureSteps(steps, drop)


# -- ONNX ---------------------------------------------------------------------------------------------------------
BASE_OPSET = 17
# What opset 17 implies for ai.onnx.ml; onnxmltools' LightGBM converter knows no later one.
ML_OPSET = 3


def target_opset(steps: Sequence[FeatureComponent]) -> dict[str, int]:
    """The opsets a graph is exported at: ours, or what its feature components need if more."""
    return {"": max([BASE_OPSET, *(step.min_opset for step in steps)]), "ai.onnx.ml": ML_OPSET}


def _alias(cls: type) -> str:
    return f"MlopsFeature_{cls.__module__.replace('.', '_')}_{cls.__qualname__}"


def _declare(scope: Any, model: FeatureSteps, inputs: list[Any]) -> dict[str, Any]:
    """An operator per component, from the variables of its input columns to one variable per output column (named
    as the column): every column's variable by name."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    columns = {v.raw_name: v for v in inputs}
    for step in model.steps:
        register_component(type(step))
        operator = scope.declare_local_operator(_alias(type(step)), step)
        operator.inputs = [columns[c] for c in step.input_columns()]
        for name, kind in step.output_columns().items():
            tensor = FloatTensorType([None, 1]) if kind == "numeric" else StringTensorType([None, 1])
            variable = scope.declare_local_variable(name, tensor)
            operator.outputs.append(variable)
            columns[name] = variable
    return columns


def parse_feature_steps(scope: Any, model: FeatureSteps, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """skl2onnx parser of :class:`FeatureSteps`: every column's variable for the next step, the dropped ones left
    out."""
    columns = _declare(scope, model, inputs)
    for name in model.drop:
        columns.pop(name, None)
    return list(columns.values())


class ComponentProbe(FeatureSteps):
    """The feature components alone, their output columns the graph's outputs: what ``mlops component check`` and the
    run's component parity check run in onnxruntime."""


def parse_probe(scope: Any, model: ComponentProbe, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    columns = _declare(scope, model, inputs)
    return [columns[name] for step in model.steps for name in step.output_columns()]


def probe_graph(features: FeatureSteps, kinds: dict[str, FeatureType]) -> bytes:
    """The ONNX graph of ``features``' components alone (inputs: the raw columns they read; outputs: their columns, in
    order), with what :func:`mlops.serving.parity.component_parity` needs to feed and read it."""
    import json

    from skl2onnx import convert_sklearn, update_registered_converter
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from mlops.serving.signature import PROBE_KEY

    register_feature_steps()
    if ComponentProbe not in _REGISTERED:
        update_registered_converter(ComponentProbe, "MlopsComponentProbe", _no_shape, _no_nodes, parser=parse_probe)
        _REGISTERED.add(ComponentProbe)
    read = {c for step in features.steps for c in step.input_columns()}
    used = {c: k for c, k in kinds.items() if c in read}
    types = [
        (c, StringTensorType([None, 1]) if k is FeatureType.CATEGORICAL else FloatTensorType([None, 1]))
        for c, k in used.items()
    ]
    probe = ComponentProbe(features.steps, ())
    onx = convert_sklearn(probe, initial_types=types, target_opset=target_opset(features.steps))
    inputs = [
        {"name": c, "type": k.value, "input": i.name} for (c, k), i in zip(used.items(), onx.graph.input, strict=True)
    ]
    columns = [
        {"name": name, "kind": kind, "component": f"{type(step).__module__}:{type(step).__qualname__}"}
        for step in features.steps
        for name, kind in step.output_columns().items()
    ]
    entry = onx.metadata_props.add()
    entry.key, entry.value = PROBE_KEY, json.dumps({"inputs": inputs, "columns": columns})
    return bytes(onx.SerializeToString())


def check_deterministic(features: FeatureSteps, X_fit: pd.DataFrame, y: Any, X: pd.DataFrame) -> None:
    """Refuse components whose columns differ between two fits on the same data, or two transforms of the same rows
    — naming the component and the column. A model must be made again from its inputs, and the served graph
    computes each column once: randomness there is a mismatch nobody can explain."""
    import numpy as np
    from sklearn.base import clone

    again = clone(features).fit(X_fit, y)
    first, second = features.transform(X), again.transform(X)
    for step in features.steps:
        for name in step.output_columns():
            a, b = first[name].to_numpy(), second[name].to_numpy()
            same = (a == b) | (pd.isna(a) & pd.isna(b)) if a.dtype.kind == "f" else a == b
            if not np.all(same):
                where = f"{type(step).__module__}:{type(step).__qualname__}"
                raise ComponentError(
                    f"{where} is not deterministic: its column {name!r} differs on {int((~same).sum())} of {len(a)} "
                    "rows between two fits on the same data (rule: deterministic; fix: seed any randomness from a "
                    "parameter, and keep compute free of it)"
                )


def _no_shape(operator: Any) -> None:
    """The outputs are typed where the parser declares them."""


def _no_nodes(scope: Any, operator: Any, container: Any) -> None:
    """FeatureSteps itself adds no node: its components do."""


def convert_component(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter of any feature component: the nodes its ``onnx`` builds, each output bound to its column's
    variable (numeric ones cast to float32, the type the graph's numeric columns have)."""
    from onnx import TensorProto
    from skl2onnx.algebra.onnx_ops import OnnxCast, OnnxIdentity

    step: FeatureComponent = operator.raw_operator
    opset = container.target_opset
    where = f"{type(step).__module__}:{type(step).__qualname__}"
    try:
        built = step.onnx(dict(zip(step.input_columns(), operator.inputs, strict=True)), Ops(opset))
    except NotImplementedError as err:
        raise ComponentError(f"{where}: {err}") from None
    except Exception as err:  # noqa: BLE001 — the user's code: any error, named with its component
        raise ComponentError(f"{where} could not be converted to ONNX: {type(err).__name__}: {err}") from None
    for (column, kind), variable in zip(step.output_columns().items(), operator.outputs, strict=True):
        if column not in built:
            raise ComponentError(f"{where}: onnx() did not return its output column {column!r}")
        node = built[column]
        if kind == "numeric":
            node = OnnxCast(node, to=TensorProto.FLOAT, op_version=opset, output_names=[variable])
        else:
            node = OnnxIdentity(node, op_version=opset, output_names=[variable])
        node.add_to(scope, container)


_REGISTERED: set[type] = set()


def register_component(cls: type) -> None:
    """Make skl2onnx convert ``cls`` with :func:`convert_component` (once per class and process)."""
    from skl2onnx import update_registered_converter

    if cls in _REGISTERED:
        return
    update_registered_converter(cls, _alias(cls), _no_shape, convert_component)
    _REGISTERED.add(cls)


def register_feature_steps() -> None:
    """Make skl2onnx parse :class:`FeatureSteps` (once per process)."""
    from skl2onnx import update_registered_converter

    if FeatureSteps in _REGISTERED:
        return
    update_registered_converter(FeatureSteps, "MlopsFeatureSteps", _no_shape, _no_nodes, parser=parse_feature_steps)
    _REGISTERED.add(FeatureSteps)
