"""Serving benchmarks: handler latency vs raw onnxruntime vs scikit-learn, capture's cost, cold init, bundle size.

Run: ``python -m benchmarks.serving`` (prints Markdown tables; figures go to docs/benchmarks.md);
``python -m benchmarks.serving by-entity`` runs only the feature store's table (a record by its entity key against
the same record with its features).
Not a test: timings depend on the machine; the tests assert behaviour, this measures speed.

While handlers run, the process's stdout (where capture writes its lines, as the Lambda runtime reads them) is an
OS pipe read by another process; the tables are printed after.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import offline_aws


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q))


def timed(fn, repeats: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    for _ in range(min(20, repeats)):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), percentile(samples, 99)


def train(family: str):  # type: ignore[no-untyped-def]
    from mlops.core.config import Family, FeatureType, Task
    from mlops.ml.export import to_onnx
    from mlops.ml.models import build_pipeline, model_frame
    from mlops.serving.signature import Signature
    from mlops.tools.samples import bundled

    df = bundled("breast-cancer")
    X, y = df.drop(columns=["target"]), df["target"]
    kinds = {c: FeatureType.NUMERIC for c in X.columns}
    params = {"C": 1.0} if family == "logistic_regression" else {"max_iter": 200}
    pipe = build_pipeline(Family(family), params, Task.BINARY, kinds, 0)
    pipe.fit(model_frame(X, kinds), y)
    inputs = [{"name": c, "type": "numeric"} for c in X.columns]
    onnx_bytes = to_onnx(pipe, kinds, Signature("binary", "target", inputs, [0, 1]))
    return pipe, kinds, X, onnx_bytes


def train_churn() -> tuple[bytes, Any, Any]:
    """A churn classifier on the example feature set's newest values (its features as the online store holds
    them): the ONNX bytes, the feature set and its rows (newest per customer)."""
    from datetime import UTC, datetime

    from mlops.core.config import Family, Task
    from mlops.core.feature_sets import load_feature_set
    from mlops.ml.export import to_onnx
    from mlops.ml.models import build_pipeline, model_frame
    from mlops.serving.signature import Signature
    from mlops.tools.samples import REPOSITORY, example_feature_store

    fs = load_feature_set(REPOSITORY / "feature_sets" / "customers.yaml")
    features, _ = example_feature_store(datetime.now(UTC))
    newest = features.sort_values("as_of").groupby("customer_id").tail(1).reset_index(drop=True)
    kinds = dict(fs.features)
    X = newest[list(kinds)]
    y = (newest["support_calls"] >= 4).astype(int)
    pipe = build_pipeline(Family("logistic_regression"), {"C": 1.0}, Task.BINARY, kinds, 0)
    pipe.fit(model_frame(X, kinds), y)
    inputs = [{"name": c, "type": k.value} for c, k in kinds.items()]
    signature = Signature("binary", "churned", inputs, [0, 1], id_column="customer_id")
    return to_onnx(pipe, kinds, signature), fs, newest


@contextlib.contextmanager
def serving_champion(
    onnx_bytes: bytes,
    env: dict[str, str] | None = None,
    capture_sample: float | None = None,
    model: str = "breast-cancer",
) -> Iterator[None]:
    """An in-memory account (moto) whose champion is ``onnx_bytes``, and the serve handler's environment."""
    import boto3
    from moto import mock_aws

    from mlops.core.registry import promote, register_version
    from mlops.local.lambda_runtime import reset_caches
    from mlops.local.provision import create_resources
    from mlops.serving import api
    from mlops.tools.samples import example_config_path
    from mlops.wiring.runtime import make_stores

    config_path = Path((env or {}).get("MLOPS_CONFIG_URI") or example_config_path())
    if capture_sample is not None:  # the example with monitoring.capture_sample replaced
        import yaml

        raw = yaml.safe_load(config_path.read_text())
        raw.setdefault("monitoring", {})["capture_sample"] = capture_sample
        config_path = Path(tempfile.mkdtemp()) / f"{model}.yaml"
        config_path.write_text(yaml.safe_dump(raw))
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        resources = create_resources(session)
        os.environ.update(
            {
                **resources.as_env(),
                "POWERTOOLS_TRACE_DISABLED": "true",
                **(env or {}),
                "MLOPS_CONFIG_URI": str(config_path),
            }
        )
        reset_caches()
        api.model_cache.cache_clear()
        stores = make_stores(resources, session)
        ref = stores.artifacts.put_bytes("models/bench.onnx", onnx_bytes)
        register_version(stores, {"model": model, "status": "approved", "artifacts": {"onnx": ref.as_dict()}})
        promote(stores, model, 1, reason="bench", actor="bench")
        yield
        api.model_cache.cache_clear()


@contextlib.contextmanager
def piped_stdout() -> Iterator[None]:
    """fd 1 becomes a pipe read by another process, as the Lambda runtime reads a function's output (a reader
    thread in this process would compete for the GIL and charge the handler for it)."""
    import sys

    reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert reader.stdin is not None
    saved = os.dup(1)
    os.dup2(reader.stdin.fileno(), 1)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the process's own stdout, now the pipe
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        sys.stdout = sys.__stdout__
        reader.stdin.close()
        reader.wait()


def captured_bytes(event: dict[str, Any], context: Any) -> int:
    """The bytes one request's capture writes to the function's log (its lines and their newlines)."""
    import io
    import sys

    from mlops.serving import api

    saved, sys.stdout = sys.stdout, io.StringIO()
    try:
        api.handle(event, context)
        return len(sys.stdout.getvalue().encode())
    finally:
        sys.stdout = saved


def floor_fn(model: Any, body: str) -> Callable[[], bytes]:
    """The least any handler must do for this request: orjson in, one float32 matrix, ``session.run``, the same
    response out with orjson."""
    import orjson

    names = [s["name"] for s in model.signature.inputs]
    inputs = [s.get("input", s["name"]) for s in model.signature.inputs]
    classes = [str(c) for c in model.signature.classes]

    def floor() -> bytes:
        records = orjson.loads(body)["records"]
        matrix = np.asarray([[r[c] for c in names] for r in records], dtype=np.float32)
        labels, proba = model.session.run(None, {k: matrix[:, j : j + 1] for j, k in enumerate(inputs)})
        rows = [
            {"prediction": label, "probabilities": dict(zip(classes, p, strict=True))}
            for label, p in zip(labels.tolist(), np.round(proba, 6).tolist(), strict=True)
        ]
        return orjson.dumps({"model": "m", "model_version": 1, "request_id": "r", "predictions": rows})

    return floor


def latency_rows(family: str) -> tuple[list[str], list[str]]:
    """Handler (API Gateway event in, JSON out) vs its floor vs session.run vs predict_proba, in one process; and
    the handler with capture at the example config's default against the same floor, with capture's bytes."""
    import orjson
    import yaml

    from mlops.local.apigw import rest_event
    from mlops.local.lambda_runtime import LocalContext
    from mlops.ml.models import model_frame
    from mlops.serving import api
    from mlops.serving.onnx_model import OnnxModel
    from mlops.tools.samples import example_config_path

    pipe, kinds, X, onnx_bytes = train(family)
    model = OnnxModel(onnx_bytes)
    default = example_config_path()
    rate = float(yaml.safe_load(default.read_text()).get("monitoring", {}).get("capture_sample", 1.0))
    rows, capture_rows = [], []
    # The serve path itself with capture off; then the same requests with capture at its default.
    with serving_champion(onnx_bytes, {"MLOPS_MAX_PREDICT_ROWS": "10000"}, capture_sample=0.0), piped_stdout():
        off = os.environ["MLOPS_CONFIG_URI"]
        context = LocalContext("serve")
        for n, repeats in ((1, 2000), (10, 1000), (100, 300), (1000, 40)):
            records = X.sample(n, replace=True, random_state=0).to_dict("records")
            body = json.dumps({"records": records})
            event = rest_event("POST", "/predict", body)
            frame = model_frame(X.sample(n, replace=True, random_state=0), kinds)
            feeds = {s["input"]: frame[s["name"]].to_numpy().reshape(-1, 1) for s in model.signature.inputs}
            first = api.handle(event, context)
            assert first["statusCode"] == 200, first["body"][:500]
            floor = floor_fn(model, body)
            h = timed(lambda event=event: api.handle(event, context), repeats)
            f = timed(floor, repeats)
            o = timed(lambda feeds=feeds: model.session.run(None, feeds), repeats)
            s = timed(lambda frame=frame: pipe.predict_proba(frame), max(5, repeats // 4))
            os.environ["MLOPS_CONFIG_URI"] = str(default)
            api.capture_sample.cache_clear()  # a config change is a new execution environment in Lambda
            hc = timed(lambda event=event: api.handle(event, context), repeats)
            size = captured_bytes(event, context) if rate >= 1 else 0
            os.environ["MLOPS_CONFIG_URI"] = off
            api.capture_sample.cache_clear()
            compact = sum(len(orjson.dumps(r)) for r in records)  # each record as compact JSON, its names included
            rows.append(
                f"| {family} | {n:,} | {h[0]:.3f} / {h[1]:.3f} | {f[0]:.3f} | **{h[0] / f[0]:.2f}x** | "
                f"{o[0]:.3f} | {s[0]:.3f} | {s[0] / h[0]:.1f}x |"
            )
            capture_rows.append(
                f"| {family} | {n:,} | {rate:g} | {hc[0]:.3f} / {hc[1]:.3f} | {f[0]:.3f} | **{hc[0] / f[0]:.2f}x** | "
                f"{hc[0] - h[0]:+.3f} | {size / n:,.0f} | {compact / n:,.0f} | **{size / compact:.2f}x** |"
            )
        api.model_cache.cache_clear()
    return rows, capture_rows


def by_entity_rows(repeats: int = 500) -> list[str]:
    """One record by its customer id (the serve function completes it from the online table: a ``BatchGetItem``)
    against the same record with its features sent, through the same handler, capture off; in one process against
    moto, so the lookup's figure is the serve path's own work plus moto's in-process DynamoDB, not a network round
    trip (DynamoDB's own single-digit milliseconds in-region come on top in AWS)."""
    from mlops.core.constants import ENV_FEATURE_SETS_URI
    from mlops.core.ports import OnlineValue
    from mlops.local.apigw import rest_event
    from mlops.local.lambda_runtime import LocalContext
    from mlops.serving import api
    from mlops.tools.samples import REPOSITORY
    from mlops.wiring.runtime import stores_from_env

    onnx_bytes, fs, newest = train_churn()
    env = {
        ENV_FEATURE_SETS_URI: str(REPOSITORY / "feature_sets" / "customers.yaml"),
        "MLOPS_CONFIG_URI": str(REPOSITORY / "models" / "examples" / "churn.yaml"),
    }
    rows = []
    with serving_champion(onnx_bytes, env, capture_sample=0.0, model="churn"), piped_stdout():
        online = stores_from_env().online
        assert online is not None
        for r in newest.to_dict("records"):
            event_time = pd_timestamp(r["as_of"])
            values = {k: r[k] for k in fs.features}
            online.put_latest(fs.name, OnlineValue(r["customer_id"], event_time, int(event_time) + 10**8, values), "b")
        context = LocalContext("serve")
        for n in (1, 10, 100):
            picked = newest.sample(n, replace=True, random_state=0).to_dict("records")
            by_key = [{"customer_id": r["customer_id"]} for r in picked]
            full = [{k: r[k] for k in ("customer_id", *fs.features)} for r in picked]
            events = [rest_event("POST", "/models/churn/predict", json.dumps({"records": b})) for b in (by_key, full)]
            answers = [json.loads(api.handle(e, context)["body"]) for e in events]
            assert answers[0]["predictions"] == answers[1]["predictions"], answers
            times = max(20, repeats // n)
            k = timed(lambda e=events[0]: api.handle(e, context), times)
            f = timed(lambda e=events[1]: api.handle(e, context), times)
            keys = [r["customer_id"] for r in by_key]
            store = timed(lambda keys=keys: online.get_many(fs.name, keys), times)  # BatchGetItem(s) alone
            own = k[0] - f[0] - store[0]
            rows.append(
                f"| {n:,} | {k[0]:.3f} / {k[1]:.3f} | {f[0]:.3f} / {f[1]:.3f} | {k[0] - f[0]:+.3f} | "
                f"**{k[0] / f[0]:.2f}x** | {store[0]:.3f} | {own:+.3f} |"
            )
    return rows


def pd_timestamp(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def print_by_entity() -> None:
    offline_aws()
    print("## Serving by entity: a record by customer id against the same record with its features (ms)\n")
    print(
        "| records | by customer id, p50 / p99 | features sent, p50 / p99 | lookup adds (p50) | ÷ | of which "
        "the store call (moto, in process) | the serve path's own |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for row in by_entity_rows():
        print(row)


COLD = """
import time
t0 = time.perf_counter()
import sys
sys.path[:0] = {paths!r}
from mlops.serving.onnx_model import OnnxModel
from mlops.serving import api  # the serve handler's imports: Powertools resolver, pydantic, onnxruntime
t1 = time.perf_counter()
model = OnnxModel(open({model!r}, "rb").read())
t2 = time.perf_counter()
model.predict_records([{{c: 1.0 for c in {columns!r}}}])
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def cold_rows(onnx_path: Path, columns: list[str]) -> list[str]:
    from mlops.layers.build import build_code, build_dependencies, dir_size, find_python

    python = find_python("3.12")
    if python is None:
        return ["| (python3.12 not found) | | | | |"]
    code = build_code("3.12")
    layer = build_dependencies("serving", "x86_64", "3.12")
    runtime = build_dependencies("runtime", "x86_64", "3.12")  # boto3 & co., as /var/runtime has them
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source_only = Path(tmp) / "serving"
        shutil.copytree(layer.path / "python", source_only)
        for cache in [p for p in source_only.rglob("__pycache__") if p.is_dir()]:
            shutil.rmtree(cache)
        variants = (
            ("byte-compiled", layer.path / "python", dir_size(layer.path / "python")),
            ("sources only", source_only, dir_size(source_only)),
        )
        for label, site, size in variants:
            runs = []
            for _ in range(5):
                paths = [str(site), str(code.path / "python"), str(runtime.path / "python")]
                script = COLD.format(paths=paths, model=str(onnx_path), columns=columns)
                out = subprocess.run([python, "-I", "-B", "-c", script], capture_output=True, text=True, check=True)
                runs.append([float(x) for x in out.stdout.split()])
            med = [statistics.median(r[i] for r in runs) for i in range(3)]
            rows.append(
                f"| x86_64, {label} ({size / 1e6:.1f} MB) | {med[0] * 1000:.0f} | {med[1] * 1000:.1f} | "
                f"{med[2] * 1000:.1f} | {sum(med) * 1000:.0f} |"
            )
    return rows


def bundle_rows() -> list[str]:
    from mlops.layers.build import build_code, build_dependencies, dir_size

    rows = []
    code = build_code("3.12")
    for arch in ("arm64", "x86_64"):
        layer = build_dependencies("serving", arch, "3.12")
        with tempfile.TemporaryDirectory() as tmp:
            zpath = Path(tmp) / "layer.zip"
            with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
                for root in (layer.path, code.path):
                    for f in (root / "python").rglob("*"):
                        if f.is_file():
                            zf.write(f, f.relative_to(root))
            unzipped = dir_size(layer.path / "python") + dir_size(code.path / "python")
            rows.append(f"| {arch} | {unzipped / 1e6:.1f} | {zpath.stat().st_size / 1e6:.1f} | {layer.compiled} |")
    return rows


def main() -> None:
    offline_aws()
    print("## Warm handler latency (ms, median / p99) against its floor\n")
    print(
        "| model | rows | handler (event → JSON) | floor | handler ÷ floor | onnxruntime session.run "
        "| scikit-learn predict_proba | scikit-learn / handler |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    captures = []
    for family in ("logistic_regression", "gradient_boosting"):
        rows, capture_rows = latency_rows(family)
        captures += capture_rows
        for row in rows:
            print(row)
    print("\n## The handler with capture at the example config's default (ms, median / p99) against the same floor\n")
    print(
        "| model | rows | capture_sample | handler with capture | floor | ÷ floor | capture's cost | bytes per "
        "captured row | the row's compact JSON | bytes ÷ compact JSON |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in captures:
        print(row)
    _, _, X, onnx_bytes = train("gradient_boosting")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        path.write_bytes(onnx_bytes)
        print("\n## Cold init under python3.12 with the built serving layer (ms, median of 5)\n")
        print("| layer | imports | model load | first prediction | total |")
        print("|---|---:|---:|---:|---:|")
        for row in cold_rows(path, list(X.columns)):
            print(row)
    print("\n## Serving bundle (serving layer + mlops code layer)\n")
    print("| architecture | unzipped MB | zipped MB | byte-compiled |")
    print("|---|---:|---:|---|")
    for row in bundle_rows():
        print(row)


if __name__ == "__main__":
    import sys

    print_by_entity() if sys.argv[1:] == ["by-entity"] else main()
