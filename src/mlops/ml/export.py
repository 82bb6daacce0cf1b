"""skl2onnx export of the whole pipeline (parity is checked later, in the serving runtime)."""

from __future__ import annotations

from onnx import ModelProto
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from mlops.config import FeatureType, Task
from mlops.errors import ModelExportError
from mlops.serving.signature import SIGNATURE_KEY, Signature

TARGET_OPSET = 17


def to_onnx(pipeline: Pipeline, kinds: dict[str, FeatureType], signature: Signature) -> bytes:
    initial_types = [
        (c, FloatTensorType([None, 1]) if k is FeatureType.NUMERIC else StringTensorType([None, 1]))
        for c, k in kinds.items()
    ]
    model = pipeline.steps[-1][1]
    options = {id(model): {"zipmap": False}} if signature.task != Task.REGRESSION.value else None
    try:
        onx: ModelProto = convert_sklearn(
            pipeline, initial_types=initial_types, options=options, target_opset=TARGET_OPSET
        )
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
