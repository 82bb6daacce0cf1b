"""The test environment runs the versions the Lambda layers are built with (one constraints file)."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

CONSTRAINTS = Path(__file__).resolve().parents[2] / "layers" / "requirements" / "constraints.txt"


def test_given_the_layer_pins_then_the_test_environment_has_exactly_those_versions():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", CONSTRAINTS.read_text(), flags=re.M))
    assert {"scikit-learn", "numpy", "pandas", "onnxruntime", "skl2onnx"} <= set(pins)
    assert {name: version(name) for name in pins} == pins
