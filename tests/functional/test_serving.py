"""The serving handler through API Gateway REST proxy events, against a champion registered in moto."""

from __future__ import annotations

import json

import pytest

from mlops.core.registry import promote
from mlops.local.apigw import call
from mlops.monitoring import capture
from mlops.serving import api
from mlops.tools.samples import bundled
from tests.chain import run_chain

pytestmark = pytest.mark.functional

FEATURES = bundled("breast-cancer").drop(columns=["target"])


@pytest.fixture
def served(lambda_env, quick_breast_cancer_config, monkeypatch):
    """A champion trained by the chain, the serve handler's environment, and a fresh model cache."""
    monkeypatch.setenv("MLOPS_MODEL_CACHE_SECONDS", "0")
    monkeypatch.setenv("MLOPS_MAX_PREDICT_ROWS", "50")
    body = bundled("breast-cancer").to_csv(index=False).encode()
    out = run_chain(lambda_env.context(quick_breast_cancer_config), lambda_env.upload("breast-cancer/a.csv", body))
    assert out["status"] == "SUCCEEDED"
    api.model_cache.cache_clear()
    yield lambda_env
    api.model_cache.cache_clear()


def _predict(records, **kw):
    status, _, body = call("POST", "/predict", json.dumps({"records": records}), **kw)
    return status, json.loads(body)


def test_given_a_champion_when_records_are_posted_then_predictions_and_probabilities(served):
    rows = FEATURES.head(3).to_dict("records")
    status, body = _predict(rows)
    assert status == 200, body
    assert body["model_version"] == 1 and body["request_id"]
    assert len(body["predictions"]) == 3
    for p in body["predictions"]:
        assert p["prediction"] in (0, 1)
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-4


def test_given_bad_records_then_a_4xx_names_each_field_and_never_a_5xx(served):
    good = FEATURES.head(1).to_dict("records")[0]
    cases = [
        ({**good, "mean_radius": "big"}, "mean_radius", "expected a number"),
        ({k: v for k, v in good.items() if k != "worst_area"}, "worst_area", "missing field"),
        ({**good, "colour": "red"}, "colour", "unknown field"),
        ({**good, "mean_texture": True}, "mean_texture", "expected a number"),
    ]
    for record, field, words in cases:
        status, body = _predict([record])
        assert status == 400, body
        assert body["errors"][0]["field"] == field and words in body["errors"][0]["problem"]
        assert field in body["message"]


def test_given_null_values_then_they_are_imputed_as_in_training(served):
    record = {**FEATURES.head(1).to_dict("records")[0], "mean_radius": None}
    status, body = _predict([record])
    assert status == 200 and body["predictions"][0]["prediction"] in (0, 1)


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ("not json", "body", "not valid JSON"),
        ('{"records": [{"a": 1}', "body", "not valid JSON"),
        ('{"records": []}', "records", "at least 1 item"),
        ('{"rows": [{}]}', "records", "required"),
        ('{"records": [1, 2]}', "records[0]", "valid dictionary"),
        ('{"records": [{"mean_radius": NaN}]}', "", "missing field"),  # json reads NaN; the record is checked
    ],
)
def test_given_a_body_that_is_not_a_request_then_a_400_names_the_problem(served, raw, field, words):
    """The same status API Gateway's request model gives these bodies before the function runs (400), and a
    message that says what is wrong with this one (it was a bare 422 with error types only)."""
    got, _, body = call("POST", "/predict", raw)
    answer = json.loads(body)
    assert got == 400, answer
    assert words in answer["message"], answer
    if field:
        assert answer["errors"][0]["field"] == field, answer


@pytest.mark.parametrize("depth", [1_100, 5_000])
@pytest.mark.parametrize("event_file", ["api_predict", "api_predict_v2"])
def test_given_a_body_nested_past_the_json_depth_limit_when_invoked_directly_then_a_400_names_it(
    lambda_env, depth, event_file
):
    """orjson stops at 1,024 levels and json (its fallback) raised RecursionError: an unhandled function error."""
    from mlops.local.lambda_runtime import invoke
    from tests.conftest import load_event

    event = load_event(event_file)
    event["body"] = '{"records": ' + "[" * depth + "]" * depth + "}"
    out = invoke("serve", event)
    assert out.function_error is None, out.payload
    assert out.payload["statusCode"] == 400
    body = json.loads(out.payload["body"])
    assert "nested" in body["message"] and "1,024" in body["message"], body


def test_given_too_many_rows_or_bytes_then_413_with_the_limit(served):
    status, body = _predict(FEATURES.head(60).to_dict("records"))
    assert status == 413 and "at most 50" in body["message"]
    huge = json.dumps({"records": [{"x": "a" * 1000}] * 7000})  # over Lambda's 6 MB: API Gateway's own 413
    got, _, text = call("POST", "/predict", huge)
    assert got == 413 and json.loads(text)["message"] == "Request Too Long"
    # invoked directly (not through API Gateway), the function's own guard answers with its limit
    from mlops.local.apigw import rest_event
    from mlops.local.lambda_runtime import invoke

    direct = invoke("serve", rest_event("POST", "/predict", json.dumps({"records": [{"x": "a" * 1000}] * 6500})))
    assert direct.payload["statusCode"] == 413 and "at most" in json.loads(direct.payload["body"])["message"]


def test_given_model_and_health_routes_then_they_describe_the_champion(served):
    status, _, body = call("GET", "/model")
    info = json.loads(body)
    assert status == 200 and info["version"] == 1 and info["task"] == "binary"
    assert {i["name"] for i in info["inputs"]} == set(FEATURES.columns)
    status, _, body = call("GET", "/health")
    assert status == 200 and json.loads(body)["model_version"] == 1
    status, _, body = call("GET", "/openapi.json")
    assert status == 200 and "/predict" in json.loads(body)["paths"]


def test_given_two_models_and_one_champion_then_health_says_partial_and_which_is_loaded(served, monkeypatch):
    """It said "no_model" while breast-cancer's champion was loaded and answering."""
    from mlops.core.constants import ENV_CONFIG_URI
    from mlops.local.lambda_runtime import reset_caches
    from mlops.tools.samples import example_config_path

    both = f"{example_config_path('breast-cancer')},{example_config_path('diabetes')}"
    monkeypatch.setenv(ENV_CONFIG_URI, both)
    reset_caches()
    api.model_cache.cache_clear()
    status, _, body = call("GET", "/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "partial", health
    assert health["models"] == {"breast-cancer": 1, "diabetes": None}


def test_given_a_promotion_then_it_takes_effect_without_a_redeploy(served, quick_breast_cancer_config):
    body = (
        bundled("breast-cancer").sample(frac=0.95, random_state=1).to_csv(index=False).encode()
    )  # new data: a new model
    run_chain(served.context(quick_breast_cancer_config), served.upload("breast-cancer/b.csv", body))
    assert _predict(FEATURES.head(1).to_dict("records"))[1]["model_version"] == 2
    promote(served.stores, "breast-cancer", 1, reason="test", actor="t")
    assert _predict(FEATURES.head(1).to_dict("records"))[1]["model_version"] == 1


def test_given_a_champion_that_fails_to_load_then_the_last_good_one_keeps_serving(served, capsys):
    from mlops.core.registry import register_version

    assert _predict(FEATURES.head(1).to_dict("records"))[1]["model_version"] == 1
    broken = served.stores.artifacts.put_bytes("models/broken.onnx", b"not an onnx model")
    register_version(
        served.stores, {"model": "breast-cancer", "status": "approved", "artifacts": {"onnx": broken.as_dict()}}
    )
    promote(served.stores, "breast-cancer", 2, reason="bad push", actor="t")
    capsys.readouterr()
    status, body = _predict(FEATURES.head(1).to_dict("records"))
    assert status == 200 and body["model_version"] == 1
    # Counted where an alarm can see it: the handler's EMF line carries ModelLoadFailures.
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"ModelLoadFailures"' in x]
    assert emf and emf[-1]["ModelLoadFailures"] in (1, 1.0, [1], [1.0])


def test_given_no_champion_then_503_not_500(lambda_env, monkeypatch):
    api.model_cache.cache_clear()
    status, body = _predict([{"a": 1}])
    assert status == 503 and "no champion" in body["message"]
    api.model_cache.cache_clear()


def test_given_the_api_gateway_event_file_when_invoked_then_200_with_a_prediction(served):
    from mlops.local.lambda_runtime import invoke
    from tests.conftest import load_event

    out = invoke("serve", load_event("api_predict"))
    assert out.function_error is None
    assert out.payload["statusCode"] == 200
    body = json.loads(out.payload["body"])
    assert body["predictions"][0]["prediction"] == 0 and body["model_version"] == 1


def test_given_integers_beyond_64_bits_then_a_400_naming_the_field_never_a_5xx(served):
    row = FEATURES.head(1).to_dict("records")[0]
    for huge in (2**63, 10**30, int("9" * 401), -(10**39)):  # 502 before: OverflowError in the conversion
        status, body = _predict([{**row, "mean_radius": huge}])
        assert status == 400, body
        assert [(e["row"], e["field"]) for e in body["errors"]] == [(0, "mean_radius")]
        assert "training ranges outside" in body["errors"][0]["problem"]
    status, body = _predict([{**row, "mean_radius": 14}])  # an int is a number
    assert status == 200, body


def test_given_several_bad_records_then_every_problem_is_reported_together(served):
    rows = FEATURES.head(3).to_dict("records")
    rows[0]["mean_radius"] = "large"  # a type error in record 0
    rows[1]["colour"] = "red"  # an unknown field in record 1
    rows[2]["mean_texture"] = [1, 2]  # and a list where a number belongs
    status, body = _predict(rows)
    assert status == 400
    found = {(e["row"], e["field"]) for e in body["errors"]}
    assert found == {(0, "mean_radius"), (1, "colour"), (2, "mean_texture")}, body


def test_given_a_record_with_an_unknown_a_missing_and_a_wrong_typed_field_then_the_400_and_the_cli_name_all_three(
    served, monkeypatch
):
    """The 400 named the unknown and the missing field only (the record's values were never checked), and the
    CLI printed "(and 1 more)" with no way to see it."""
    from typer.testing import CliRunner

    from mlops.tools import cli
    from mlops.tools.platform import Platform

    record = {**FEATURES.head(1).to_dict("records")[0], "colour": "red", "mean_radius": "large"}
    del record["worst_area"]
    status, body = _predict([record])
    assert status == 400, body
    assert {(e["row"], e["field"]) for e in body["errors"]} == {(0, "colour"), (0, "mean_radius"), (0, "worst_area")}
    assert "(and 2 more: errors lists all 3)" in body["message"]

    def through_the_gateway(self, method, path, payload=None):
        got, _, text = call(method, path, json.dumps(payload))
        return got, json.loads(text)

    p = Platform(session=served.session, outputs={"Models": "breast-cancer"}, env="dev", endpoint="http://local")
    monkeypatch.setattr(Platform, "local", classmethod(lambda cls, state_file=None: p))
    monkeypatch.setattr(Platform, "api_request", through_the_gateway)
    out = CliRunner().invoke(cli.app, ["predict", "--model", "breast-cancer"], input=json.dumps([record]))
    assert out.exit_code == 1
    for line in (
        "record 0, field 'colour': unknown field",
        "record 0, field 'mean_radius': expected a number, got str",
        "record 0, field 'worst_area': missing field",
    ):
        assert line in out.output, out.output


def test_given_an_http_api_v2_event_then_it_is_served(served):
    from mlops.local.lambda_runtime import invoke
    from tests.conftest import load_event

    event = load_event("api_predict_v2")
    event["body"] = json.dumps({"records": FEATURES.head(2).to_dict("records")})
    out = invoke("serve", event)
    assert out.function_error is None, out.payload
    assert out.payload["statusCode"] == 200
    body = json.loads(out.payload["body"])
    assert len(body["predictions"]) == 2 and body["request_id"] == "id-v2-request"
    event["body"] = json.dumps({"records": [{"nope": 1}]})
    refused = invoke("serve", event)
    assert refused.payload["statusCode"] == 400 and "nope" in refused.payload["body"]


def test_given_the_openapi_document_then_it_describes_the_champions_record_schema(served):
    status, _, body = call("GET", "/openapi.json")
    assert status == 200
    spec = json.loads(body)
    record = spec["components"]["schemas"]["PredictRequest"]["properties"]["records"]["items"]
    assert set(record["required"]) == set(FEATURES.columns)
    assert record["additionalProperties"] is False
    assert record["properties"]["mean_radius"]["type"] == ["number", "null"]
    assert record["properties"]["mean_radius"]["maximum"] <= 3.4e38


@pytest.fixture
def served_with_ids(lambda_env, breast_cancer_config, monkeypatch, tmp_path):
    """A champion whose config names an id column: clients send their ids and get them back."""
    import yaml

    from mlops.core.config import load_config
    from mlops.core.constants import ENV_CONFIG_URI
    from mlops.local.lambda_runtime import reset_caches
    from mlops.tools.samples import example_config_path

    raw = yaml.safe_load(example_config_path().read_text())
    raw["id_column"] = "patient_id"
    raw["training"] = {"candidates": [{"family": "logistic_regression", "params": {"C": [1.0]}}]}  # quick
    path = tmp_path / "with-ids.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv(ENV_CONFIG_URI, str(path))
    monkeypatch.setenv("MLOPS_MODEL_CACHE_SECONDS", "0")
    reset_caches()
    data = bundled("breast-cancer")
    data.insert(0, "patient_id", [f"p-{i:04d}" for i in range(len(data))])
    out = run_chain(
        lambda_env.context(load_config(path)),
        lambda_env.upload("breast-cancer/ids.csv", data.to_csv(index=False).encode()),
    )
    assert out["status"] == "SUCCEEDED"
    api.model_cache.cache_clear()
    yield data
    api.model_cache.cache_clear()


def test_given_the_id_column_then_it_is_accepted_and_echoed_per_prediction(served_with_ids):
    rows = served_with_ids.drop(columns=["target"]).head(3).to_dict("records")
    status, body = _predict(rows)
    assert status == 200, body
    assert [p["id"] for p in body["predictions"]] == ["p-0000", "p-0001", "p-0002"]
    status, body = _predict([{k: v for k, v in rows[0].items() if k != "patient_id"}])
    assert status == 200 and "id" not in body["predictions"][0]  # optional


def _captured(out: str, kind: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and f'"mlops":"{kind}"' in line]


def test_given_a_prediction_then_the_request_and_answer_are_captured_as_one_log_line(served, capsys):
    rows = FEATURES.head(3).to_dict("records")
    capsys.readouterr()
    status, body = _predict(rows)
    assert status == 200
    (line,) = _captured(capsys.readouterr().out, "capture")
    assert line["model"] == "breast-cancer" and line["version"] == body["model_version"]
    assert line["request_id"] == body["request_id"] and line["time"].endswith("Z")
    shipped = capture.flatten(line)  # what the capture function writes: one row per record
    assert [r["features"] for r in shipped] == rows
    assert [r["prediction"] for r in shipped] == [p["prediction"] for p in body["predictions"]]
    assert shipped[2]["probabilities"] == body["predictions"][2]["probabilities"]
    assert {r["request_id"] for r in shipped} == {body["request_id"]} and [r["row"] for r in shipped] == [0, 1, 2]
    # a refused request is not captured: nothing was predicted
    _predict([{**rows[0], "mean_radius": "big"}])
    assert _captured(capsys.readouterr().out, "capture") == []


def _feedback(labels):
    status, _, body = call("POST", "/feedback", json.dumps({"labels": labels}))
    return status, json.loads(body)


def test_given_labels_then_202_and_they_are_logged_for_the_capture_function(served, capsys):
    capsys.readouterr()
    labels = [{"request_id": "r-1", "label": "1"}, {"request_id": "r-1", "row": 4, "label": 0.0}]
    status, body = _feedback(labels)
    assert status == 202 and body["accepted"] == 2 and body["model"] == "breast-cancer"
    (line,) = _captured(capsys.readouterr().out, "feedback")
    # stored as the model's class (the string "1" and the number 0.0 name classes 1 and 0); row defaults to 0
    assert line["labels"] == [{"request_id": "r-1", "row": 0, "label": 1}, {"request_id": "r-1", "row": 4, "label": 0}]


@pytest.mark.parametrize(
    ("labels", "status", "field"),
    [
        ([{"request_id": "r", "label": 7}], 400, "label"),  # not a class
        ([{"request_id": "r", "label": 0.5}], 400, "label"),
        ([{"request_id": "r", "label": True}], 400, "label"),
        ([{"label": 1}], 400, "request_id"),  # names no prediction
        ([{"request_id": "r", "id": "p-1", "label": 1}], 400, "request_id"),  # both
        ([{"id": "p-1", "label": 1}], 400, "id"),  # this model has no id column
        ([{"request_id": "r", "row": -1, "label": 1}], 400, "row"),
        ([{"request_id": "r", "label": 1, "extra": 2}], 400, "extra"),
    ],
)
def test_given_bad_labels_then_a_4xx_names_the_field_and_nothing_is_logged(served, capsys, labels, status, field):
    capsys.readouterr()
    got, body = _feedback(labels)
    assert got == status, body
    assert field in json.dumps(body)
    assert _captured(capsys.readouterr().out, "feedback") == []


def test_given_more_labels_than_the_row_limit_then_413(served):
    status, body = _feedback([{"request_id": "r", "label": 1}] * 51)
    assert status == 413 and "at most 50" in body["message"]


def test_given_the_id_column_then_labels_may_name_records_by_id(served_with_ids, capsys):
    capsys.readouterr()
    status, body = _feedback([{"id": "p-0001", "label": 0}])
    assert status == 202, body
    (line,) = _captured(capsys.readouterr().out, "feedback")
    assert line["labels"] == [{"id": "p-0001", "label": 0}]


def test_given_any_request_then_the_direct_predict_path_answers_exactly_as_the_resolver(served, monkeypatch, capsys):
    """The hot path (api._direct_predict) answers only a well-formed predict, and exactly as the Powertools
    resolver would: same status, body and headers; everything else falls through to the resolver."""
    from mlops.local.apigw import rest_event

    rows = FEATURES.head(3).to_dict("records")
    good = json.dumps({"records": rows})
    cases = [
        ("POST", "/predict", good),
        ("POST", "/models/breast-cancer/predict", json.dumps({"records": FEATURES.head(40).to_dict("records")})),
        ("POST", "/predict", json.dumps({"records": [{**rows[0], "mean_radius": None}]})),
        ("POST", "/predict", json.dumps({"records": [{**rows[0], "mean_radius": "large"}]})),  # 400 by field
        ("POST", "/predict", json.dumps({"records": [{**rows[0], "mean_radius": 10**30}]})),  # 400 out of range
        ("POST", "/predict", json.dumps({"records": [{**rows[0], "colour": "red"}]})),  # 400 unknown field
        ("POST", "/predict", json.dumps({"records": rows * 20})),  # 413: above this fixture's 50 rows
        ("POST", "/models/nope/predict", good),  # 404
        ("POST", "/predict", json.dumps({"records": []})),  # 400 (as the request model answers)
        ("POST", "/predict", json.dumps({"records": rows, "extra": 1})),  # 400
        ("POST", "/predict", json.dumps({"records": [1, 2]})),  # 400
        ("POST", "/predict", '{"records": [{"mean_radius": NaN}]}'),  # not JSON to orjson; json reads it: 400
        ("POST", "/predict", "not json"),  # 400
        ("POST", "/predict/", good),  # no such route
        ("GET", "/predict", None),  # wrong method
    ]
    for method, path, body in cases:
        event = rest_event(method, path, body)
        monkeypatch.setattr(api, "DIRECT_PREDICT", True)
        direct = api.handle(event, None)
        monkeypatch.setattr(api, "DIRECT_PREDICT", False)
        resolved = api.handle(event, None)
        for answer in (direct, resolved):
            answer["multiValueHeaders"] = {k: list(v) for k, v in answer.get("multiValueHeaders", {}).items()}
        assert direct == resolved, (method, path, (body or "")[:80])
    assert api._direct_predict(rest_event("POST", "/predict", good)) is not None  # the hot path is taken
    assert api._direct_predict(rest_event("POST", "/predict", json.dumps({"records": []}))) is None
    capsys.readouterr()
