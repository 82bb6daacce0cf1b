"""skl2onnx export of the whole pipeline (parity is checked later, in the serving runtime)."""

from __future__ import annotations

from typing import Any

from onnx import ModelProto
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from mlops.components import ComponentError
from mlops.core.config import FeatureType, Task
from mlops.core.errors import ModelExportError
from mlops.serving.signature import SIGNATURE_KEY, Signature


def register_converters(pipeline: Pipeline) -> None:
    """Teach skl2onnx what this pipeline holds beyond scikit-learn: its feature components, LightGBM, a model
    component (by the converter of the scikit-learn class it derives from, unless it has one of its own)."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    from mlops.ml.features import FeatureSteps, register_feature_steps

    register_one_hot_encoder()
    if any(isinstance(stage, FeatureSteps) for _, stage in pipeline.steps):
        register_feature_steps()
    cls = type(pipeline.steps[-1][1])
    if cls in sklearn_operator_name_map:
        return
    if any(base.__module__.startswith("lightgbm") for base in cls.__mro__):
        register_lightgbm()
    for base in cls.__mro__[1:]:
        if base in sklearn_operator_name_map:
            sklearn_operator_name_map[cls] = sklearn_operator_name_map[base]
            return
    if cls not in sklearn_operator_name_map:
        raise ModelExportError(
            f"{cls.__module__}:{cls.__qualname__} has no ONNX converter, nor does any class it derives from: register "
            "one with mlops.components.register_model_converter (or derive from a scikit-learn estimator)"
        )


class _OneOfMany(list[Any]):
    """One input, counted as several: see :func:`register_one_hot_encoder`."""

    def __len__(self) -> int:
        return max(2, super().__len__())


class _SeveralInputs:
    """The operator as the converter sees it: its inputs counted as several, everything else its own."""

    def __init__(self, operator: Any) -> None:
        self._operator = operator
        self.inputs = _OneOfMany(operator.inputs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._operator, name)


def _convert_one_hot_encoder(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.operator_converters.one_hot_encoder import convert_sklearn_one_hot_encoder

    one_column = len(operator.inputs) == 1 and operator.inputs[0].type.shape[1] == 1
    convert_sklearn_one_hot_encoder(scope, _SeveralInputs(operator) if one_column else operator, container)


def register_one_hot_encoder() -> None:
    """skl2onnx converts a one-hot encoder's infrequent-categories column (``max_categories``: see
    :data:`mlops.core.constants.ONE_HOT_MAX_CATEGORIES`) on its path for several input columns, and raises
    NotImplementedError on its path for one input of several columns. A pipeline with a single categorical feature
    gives its encoder one input of one column: the several-inputs path's own case (one input, one column each), so
    it is taken there. Pinned by tests/unit/test_export.py (ONNX against scikit-learn, rare and unseen values)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.shape_calculators.one_hot_encoder import calculate_sklearn_one_hot_encoder_output_shapes
    from sklearn.preprocessing import OneHotEncoder

    update_registered_converter(
        OneHotEncoder,
        "SklearnOneHotEncoder",
        calculate_sklearn_one_hot_encoder_output_shapes,
        _convert_one_hot_encoder,
    )


def register_lightgbm() -> None:
    """LightGBM's converters from onnxmltools, registered with skl2onnx (its documented recipe)."""
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    if LGBMClassifier in sklearn_operator_name_map:
        return
    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        LGBMRegressor,
        "LightGbmLGBMRegressor",
        calculate_linear_regressor_output_shapes,
        convert_lightgbm,
        options={"split": None},
    )


def opset_for(pipeline: Pipeline) -> dict[str, int]:
    """The opsets a pipeline is exported at (see :func:`mlops.ml.features.target_opset`)."""
    from mlops.ml.features import FeatureSteps, target_opset

    return target_opset(
        [step for _, stage in pipeline.steps if isinstance(stage, FeatureSteps) for step in stage.steps]
    )


def to_onnx(pipeline: Pipeline, kinds: dict[str, FeatureType], signature: Signature) -> bytes:
    register_converters(pipeline)
    initial_types = [
        (c, FloatTensorType([None, 1]) if k is FeatureType.NUMERIC else StringTensorType([None, 1]))
        for c, k in kinds.items()
    ]
    model = pipeline.steps[-1][1]
    options = {id(model): {"zipmap": False}} if signature.task != Task.REGRESSION.value else None
    try:
        onx: ModelProto = convert_sklearn(
            pipeline,
            initial_types=initial_types,
            options=options,
            target_opset=opset_for(pipeline),
        )
    except ComponentError as err:  # names the component and what it broke
        raise ModelExportError(str(err)) from err
    except Exception as err:  # skl2onnx raises many types for unsupported constructs
        raise ModelExportError(f"skl2onnx could not convert {type(model).__name__}: {err}") from err
    # skl2onnx sanitises input names ("mean radius (mm)" → "mean_radius__mm_"): record the graph's own
    # name for each column, in order, so serving maps request fields onto the right inputs.
    graph_inputs = [i.name for i in onx.graph.input]
    inputs = [{**spec, "input": graph_inputs[i]} for i, spec in enumerate(signature.inputs)]
    signature = Signature(
        task=signature.task,
        target=signature.target,
        inputs=inputs,
        classes=signature.classes,
        id_column=signature.id_column,
    )
    entry = onx.metadata_props.add()
    entry.key, entry.value = SIGNATURE_KEY, signature.to_json()
    return bytes(onx.SerializeToString())
