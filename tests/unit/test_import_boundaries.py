"""Each Lambda bundle carries only what its modules import: check the boundaries by importing them."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def _loaded(modules: list[str]) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return {name.split(".")[0] for name in out.split()}


def test_given_the_serving_side_modules_then_no_pandas_sklearn_or_scipy_is_imported() -> None:
    loaded = _loaded(["mlops.steps.validate_model", "mlops.serving.onnx_model", "mlops.serving.parity"])
    assert "onnxruntime" in loaded
    assert not loaded & {"pandas", "sklearn", "scipy", "skl2onnx", "fastparquet"}


def test_given_the_export_step_then_no_parquet_reader_is_imported() -> None:
    loaded = _loaded(["mlops.steps.export"])
    assert "skl2onnx" in loaded
    assert not loaded & {"fastparquet", "onnxruntime"}


def test_given_the_data_steps_then_no_sklearn_is_imported() -> None:
    loaded = _loaded(["mlops.steps.extract", "mlops.steps.analyze", "mlops.steps.validate_data", "mlops.steps.prepare"])
    assert "pandas" in loaded  # the checks' frames (served traffic, feedback); DuckDB is imported per connection
    assert not loaded & {"sklearn", "scipy", "onnxruntime", "skl2onnx", "fastparquet"}  # the data bundle has none


def test_given_the_serve_and_capture_functions_then_capture_adds_nothing_heavy_to_their_bundles() -> None:
    serve = _loaded(["mlops.serving.api"])
    assert "onnxruntime" in serve and not serve & {"pandas", "sklearn", "scipy", "fastparquet"}
    shipped = _loaded(["mlops.monitoring.capture"])  # the capture function: base bundle, no numpy even
    assert not shipped & {"numpy", "pandas", "sklearn", "onnxruntime", "boto3"}


def test_given_the_monitor_then_scikit_learn_loads_only_when_labels_are_scored() -> None:
    loaded = _loaded(["mlops.monitoring.monitor"])
    assert "pandas" in loaded and not loaded & {"sklearn", "onnxruntime"}


def test_given_the_performance_estimate_then_it_loads_numpy_alone() -> None:
    loaded = _loaded(["mlops.monitoring.estimate"])  # the monitor applies a calibrator and estimates without sklearn
    assert "numpy" in loaded and not loaded & {"pandas", "sklearn", "scipy", "onnxruntime"}
