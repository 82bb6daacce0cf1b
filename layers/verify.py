"""Prove the built layers work under the Lambda runtime's Python, without Docker.

Builds the x86_64 layers (this machine's architecture), then in a clean ``python3.12 -I`` process
with only a layer and the mlops code layer on ``sys.path`` (and the layer's ``lib/`` on ``LD_LIBRARY_PATH``, as
``/opt/lib`` is in Lambda): trains a tiny pipeline with the train layer, converts it with the export layer, and
answers predictions with the serving layer — a random forest, then LightGBM (whose ``libgomp.so.1`` must be the
layer's own: the Lambda runtime has none).
Run: ``python -m mlops.layers.verify``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mlops.layers.build import RUNTIME_STANDIN, build_code, build_dependencies, find_python

TRAIN = """
import pickle, sys, numpy as np, pandas as pd
from sklearn.datasets import load_iris
from mlops.core.config import Family, FeatureType, Task
from mlops.ml.models import build_pipeline, model_frame
X, y = load_iris(return_X_y=True, as_frame=True)
kinds = {c: FeatureType.NUMERIC for c in X.columns}
family, params = sys.argv[2], {"random_forest": {"n_estimators": 20, "max_depth": 4}}.get(sys.argv[2], {})
pipe = build_pipeline(family, params, Task.MULTICLASS, kinds, 0)
if family == "lightgbm":  # its OpenMP runtime: the layer's copy (Amazon Linux 2023 has none to fall back on)
    gomp = {line.split()[-1] for line in open("/proc/self/maps") if "libgomp.so.1" in line}
    assert gomp and all("/lib/libgomp.so.1" in p and "-py3.12-" in p for p in gomp), gomp
    print("libgomp from", *gomp)
pipe.fit(model_frame(X, kinds), y)
print("train accuracy", round(pipe.score(model_frame(X, kinds), y), 3), "python", sys.version.split()[0])
proba = pipe.predict_proba(model_frame(X.head(5), kinds)).tolist()
pickle.dump((pipe, kinds, list(X.columns), X.head(5).to_dict("records"), proba), open(sys.argv[1], "wb"))
"""
EXPORT = """
import pickle, sys
from mlops.ml.export import to_onnx
from mlops.serving.signature import Signature
pipe, kinds, cols, rows, proba = pickle.load(open(sys.argv[1], "rb"))
inputs = [{"name": c, "type": "numeric"} for c in cols]
sig = Signature(task="multiclass", target="target", inputs=inputs, classes=[0, 1, 2])
open(sys.argv[2], "wb").write(to_onnx(pipe, kinds, sig))
import json; json.dump({"rows": rows, "proba": proba}, open(sys.argv[3], "w"))
print("exported onnx")
"""
SERVE = """
import json, sys
import numpy as np
from mlops.serving import api  # the serve handler's whole import graph: Powertools resolver, pydantic
from mlops.serving.onnx_model import OnnxModel
model = OnnxModel(open(sys.argv[1], "rb").read())
ref = json.load(open(sys.argv[2]))
out = model.predict_records(ref["rows"])
got = np.array([[r["probabilities"][str(c)] for c in (0, 1, 2)] for r in out])
gap = float(np.abs(got - np.array(ref["proba"])).max())
assert gap < 1e-5, gap
for banned in ("pandas", "sklearn", "scipy"):
    assert banned not in sys.modules, banned
print("served", [r["prediction"] for r in out], "max gap", gap)
"""


def run_in_layer(python: str, layer_paths: list[Path], script: str, *args: str) -> None:
    path = ":".join(str(p / "python") for p in layer_paths)
    code = f"import sys; sys.path[:0] = {path.split(':')!r}\n" + script
    # Lambda puts /opt/lib (each layer's lib/) on LD_LIBRARY_PATH, ahead of the system's own libraries.
    libraries = ":".join(str(p / "lib") for p in layer_paths if (p / "lib").is_dir())
    env = {"PATH": os.environ.get("PATH", ""), "LD_LIBRARY_PATH": libraries}
    # -B: never write byte code into the layer directory (it would inflate the measured size)
    subprocess.run([python, "-I", "-B", "-c", code, *args], check=True, env=env)


def main() -> None:
    python = find_python("3.12")
    if python is None:
        sys.exit("python3.12 not found (pyenv install 3.12, or set MLOPS_RUNTIME_PYTHON)")
    code = build_code("3.12")
    layers = {b: build_dependencies(b, "x86_64", "3.12") for b in ("train", "export", "serving")}
    runtime = build_dependencies(RUNTIME_STANDIN, "x86_64", "3.12")  # stands in for /var/runtime
    for name, layer in layers.items():
        print(f"{name:<8} {layer.size / 1e6:7.1f} MB  {layer.layout}")
    for family in ("random_forest", "lightgbm"):
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            print(f"-- {family}")
            train = [layers["train"].path, code.path, runtime.path]
            run_in_layer(python, train, TRAIN, str(t / "model.pkl"), family)
            run_in_layer(
                python,
                [layers["export"].path, code.path, runtime.path],
                EXPORT,
                str(t / "model.pkl"),
                str(t / "m.onnx"),
                str(t / "ref.json"),
            )
            serving = [layers["serving"].path, code.path, runtime.path]
            run_in_layer(python, serving, SERVE, str(t / "m.onnx"), str(t / "ref.json"))
    print("layers verified under", python)


if __name__ == "__main__":
    main()
