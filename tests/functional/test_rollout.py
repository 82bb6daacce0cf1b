"""C4 challengers in the serve handler and the registry: canary by a stable key, shadow captured and never
returned, a challenger's alarm withdrawing it through the trigger, and the champion-vs-challenger comparison."""

from __future__ import annotations

import copy
import json
from collections import Counter

import pytest
import yaml

from mlops.core.config import Task, load_config
from mlops.core.constants import CHALLENGER, ENV_CONFIG_URI, ENV_STATE_MACHINE_ARN
from mlops.core.errors import RegistryError
from mlops.core.registry import promote, set_challenger, withdraw_challenger
from mlops.local.apigw import call
from mlops.local.lambda_runtime import invoke, reset_caches
from mlops.monitoring import capture
from mlops.monitoring.monitor import compare
from mlops.serving import api
from mlops.tools.samples import bundled, example_config_path
from tests.chain import run_chain
from tests.conftest import load_event

pytestmark = pytest.mark.functional


@pytest.fixture
def two_versions(lambda_env, tmp_path, monkeypatch):
    """v1 and v2 of breast-cancer with an id column; v2 is champion, v1 the version a challenger can be."""
    raw = yaml.safe_load(example_config_path().read_text())
    raw["id_column"] = "patient_id"
    raw["evaluation"]["gates"]["max_regression"] = 1.0  # the second run is blessed whatever its metric
    raw["training"] = {"candidates": [{"family": "logistic_regression", "params": {"C": [1.0]}}]}  # quick
    path = tmp_path / "with-ids.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv(ENV_CONFIG_URI, str(path))
    monkeypatch.setenv("MLOPS_MODEL_CACHE_SECONDS", "0")
    reset_caches()
    config = load_config(path)
    data = bundled("breast-cancer")
    data.insert(0, "patient_id", [f"p-{i:04d}" for i in range(len(data))])
    for name, frame in (("a.csv", data), ("b.csv", data.sample(frac=0.9, random_state=1))):
        out = run_chain(
            lambda_env.context(config), lambda_env.upload(f"breast-cancer/{name}", frame.to_csv(index=False).encode())
        )
        assert out["status"] == "SUCCEEDED", out.get("validate_model")
    assert lambda_env.stores.meta.get_alias("breast-cancer", "champion") == 2
    api.model_cache.cache_clear()
    yield lambda_env, config, data
    api.model_cache.cache_clear()


def _predict(records):
    status, _, body = call("POST", "/predict", json.dumps({"records": records}))
    assert status == 200, body
    return json.loads(body)


def test_given_a_canary_then_its_share_follows_the_key_and_every_answer_names_its_version(two_versions, capsys):
    env, _, data = two_versions
    rows = data.drop(columns=["target"]).to_dict("records")
    with pytest.raises(RegistryError, match="champion already"):
        set_challenger(env.stores, "breast-cancer", 2, mode="canary", percent=10, reason="t", actor="t")
    with pytest.raises(RegistryError, match="0 < percent <= 50"):
        set_challenger(env.stores, "breast-cancer", 1, mode="canary", percent=80, reason="t", actor="t")
    set_challenger(env.stores, "breast-cancer", 1, mode="canary", percent=30, reason="try v1", actor="test")
    # One request of all 569 records: each record routed by its id, each answer naming its version.
    body = _predict(rows)
    versions = [p["model_version"] for p in body["predictions"]]
    share = versions.count(1) / len(versions)
    assert 0.22 < share < 0.38, share
    expected = [1 if api.canary_draw("breast-cancer", r["patient_id"]) < 30 else 2 for r in rows]
    assert versions == expected  # deterministic: the same id always gets the same version
    again = _predict(rows[:40])
    assert [p["model_version"] for p in again["predictions"]] == expected[:40]
    # Captured per version, the challenger's answers marked as such.
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"mlops":"capture"')]
    requests = Counter((line["version"], line.get("role"), line["request_id"]) for line in lines)
    assert {(v, role) for v, role, _ in requests} == {(1, CHALLENGER), (2, None)}
    assert len({rid for v, _, rid in requests if v == 1}) == len({rid for v, _, rid in requests if v == 2}) == 2
    shipped = [row for line in lines for row in capture.flatten(line)]
    assert len(shipped) == len(rows) + 40 and sum(r["version"] == 1 for r in shipped) == 2 * versions[:40].count(1) + (
        versions[40:].count(1)
    )


def test_given_a_shadow_then_the_champion_answers_and_the_capture_holds_both(two_versions, capsys):
    env, config, data = two_versions
    rows = data.drop(columns=["target"]).head(120).to_dict("records")
    set_challenger(env.stores, "breast-cancer", 1, mode="shadow", percent=0, reason="shadow v1", actor="test")
    capsys.readouterr()
    bodies = [_predict(rows[i : i + 10]) for i in range(0, 120, 10)]
    assert {b["model_version"] for b in bodies} == {2}  # never the shadow's answer
    assert all("model_version" not in p for b in bodies for p in b["predictions"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"mlops":"capture"')]
    shipped = [row for line in lines for row in capture.flatten(line)]
    assert len(shipped) == 120 and {r["version"] for r in shipped} == {2}
    assert all(r["shadow"]["version"] == 1 and r["shadow"]["prediction"] in (0, 1) for r in shipped)
    result = compare(env.stores, config, Task.BINARY, 2, shipped, [])
    assert result["mode"] == "shadow" and result["records"] == {"champion": 120, "challenger": 120}
    assert 0.8 <= result["agreement"] <= 1.0 and result["latency_ms"]["challenger"] is not None


def test_given_a_challenger_alarm_then_the_trigger_withdraws_it_and_the_history_says_why(two_versions, monkeypatch):
    env, _, data = two_versions
    monkeypatch.setenv(ENV_STATE_MACHINE_ARN, "arn:aws:states:us-east-1:123456789012:stateMachine:Training")
    set_challenger(env.stores, "breast-cancer", 1, mode="canary", percent=50, reason="try", actor="test")
    event = load_event("alarm_state_change")
    detail = event["detail"]
    detail["alarmName"] = "Mlops-dev-Monitoring-ChallengerErrorAlarm"
    detail["state"]["reason"] = "Threshold Crossed: 1 datapoint [3.0] was >= 1"
    metric = detail["configuration"]["metrics"][0]["metricStat"]["metric"]
    metric.update(name="ChallengerErrors", dimensions={"Model": "breast-cancer", "service": "serverless-mlops"})
    out = invoke("trigger", event)
    assert out.function_error is None, out.payload
    assert out.payload["status"] == "withdrawn" and out.payload["version"] == 1
    assert env.stores.meta.get_alias_item("breast-cancer", CHALLENGER) is None
    last = env.stores.meta.alias_history("breast-cancer")[-1]
    assert (last["alias"], last["action"], last["actor"]) == (CHALLENGER, "withdraw", "alarm")
    assert "ChallengerErrorAlarm" in last["reason"] and "Threshold Crossed" in last["reason"]
    assert env.stores.meta.get_alias("breast-cancer", "champion") == 2  # the champion is untouched
    assert invoke("trigger", event).payload["status"] == "ignored"  # a redelivery: nothing left to withdraw
    rows = data.drop(columns=["target"]).head(50).to_dict("records")
    assert {p.get("model_version", 2) for p in _predict(rows)["predictions"]} == {2}
    # No run was started by this alarm: it is not a drift or quality alarm.
    assert len(env.stores.meta.list_runs("breast-cancer")) == 2


def test_given_a_challenger_promoted_by_hand_then_it_is_champion_and_no_longer_a_challenger(two_versions):
    env, _, _ = two_versions
    set_challenger(env.stores, "breast-cancer", 1, mode="shadow", percent=0, reason="try", actor="test")
    promote(env.stores, "breast-cancer", 1, reason="won the shadow", actor="test")
    assert env.stores.meta.get_alias("breast-cancer", "champion") == 1
    assert env.stores.meta.get_alias_item("breast-cancer", CHALLENGER) is None
    with pytest.raises(RegistryError, match="no challenger"):
        withdraw_challenger(env.stores, "breast-cancer", reason="x", actor="t")


def _shadow_traffic(env, data, capsys, n=120):
    """Shadowed traffic with labels by id, as the monitor would read them from capture and feedback."""
    rows = data.drop(columns=["target"]).head(n).to_dict("records")
    capsys.readouterr()
    for i in range(0, n, 20):
        _predict(rows[i : i + 20])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"mlops":"capture"')]
    captured = [row for line in lines for row in capture.flatten(line)]
    labels = [{"id": r["patient_id"], "label": int(t)} for r, t in zip(rows, data["target"].head(n), strict=True)]
    return captured, labels


def test_given_live_labels_then_a_worse_challenger_breaches_its_quality_metric_and_the_policy_promotes_a_sound_one(
    two_versions, capsys
):
    from mlops.core.config import ChallengerPolicy
    from mlops.monitoring.monitor import auto_promote, challenger_metrics

    env, config, data = two_versions
    set_challenger(env.stores, "breast-cancer", 1, mode="shadow", percent=0, reason="try v1", actor="test")
    captured, labels = _shadow_traffic(env, data, capsys)
    result = compare(env.stores, config, Task.BINARY, 2, captured, labels)
    assert result["quality"]["challenger"]["labelled"] == result["quality"]["champion"]["labelled"] == 120

    # A challenger that the labels prove wrong (its shadow answers inverted): its quality metric exceeds the
    # margin its alarm judges; with too few answers in the window, nothing is published for the alarms at all.
    inverted = copy.deepcopy(captured)
    for row in inverted:
        row["shadow"]["prediction"] = 1 - int(row["shadow"]["prediction"])
        probs = row["shadow"]["probabilities"]
        row["shadow"]["probabilities"] = dict(zip(probs, reversed(list(probs.values())), strict=True))
    worse = challenger_metrics(config, compare(env.stores, config, Task.BINARY, 2, inverted, labels))
    assert worse["ChallengerQualityShortfall"] > config.monitoring.quality_margin
    assert worse["ChallengerDisagreement"] > 0.9
    few = compare(env.stores, config, Task.BINARY, 2, captured[:10], labels)
    assert set(challenger_metrics(config, few)) == {"ChallengerRecords"}

    # Not enough labels for the policy: nothing moves, and the decision says why.
    strict = config.model_copy(
        update={
            "registry": config.registry.model_copy(update={"challenger_auto_promote": ChallengerPolicy(min_labels=500)})
        }
    )
    decision = auto_promote(env.stores, strict, result)
    assert decision == {"promoted": False, "reason": decision["reason"]} and "needs 500" in decision["reason"]
    assert env.stores.meta.get_alias("breast-cancer", "champion") == 2
    # No policy: nothing either.
    assert auto_promote(env.stores, config, result) is None

    # Enough labels, no regression beyond the allowance: promoted by the policy, with the evidence.
    metrics = challenger_metrics(config, result)
    gap = metrics["ChallengerQualityShortfall"]
    assert abs(gap) < 0.05 and metrics["ChallengerLatencyRatio"] > 0
    lenient = config.model_copy(
        update={
            "registry": config.registry.model_copy(
                update={"challenger_auto_promote": ChallengerPolicy(min_labels=100, max_regression=max(gap, 0) + 0.01)}
            )
        }
    )
    decision = auto_promote(env.stores, lenient, result)
    assert decision is not None and decision["promoted"] is True, decision
    assert env.stores.meta.get_alias("breast-cancer", "champion") == 1
    assert env.stores.meta.get_alias_item("breast-cancer", CHALLENGER) is None
    history = env.stores.meta.alias_history("breast-cancer")
    promoted = [h for h in history if h["action"] == "promote" and h["actor"] == "policy"]
    assert promoted and "120 labelled answers" in promoted[-1]["reason"] and "accuracy" in promoted[-1]["reason"]


def test_given_a_shadow_stint_then_a_canary_of_the_same_version_is_judged_only_on_its_own_answers(two_versions, capsys):
    """Issue 27, finding 3: v1 shadowed (and disagreeing: its captured answers inverted), then made a canary that
    answers cleanly. The canary's comparison holds only the rows captured since it was set, as a canary: no
    disagreement from the shadow stint, so nothing for the disagreement alarm to withdraw it on."""
    from mlops.monitoring.monitor import challenger_metrics

    env, config, data = two_versions
    set_challenger(env.stores, "breast-cancer", 1, mode="shadow", percent=0, reason="shadow v1", actor="test")
    shadowed, _ = _shadow_traffic(env, data, capsys, n=300)
    for row in shadowed:  # the shadow stint's evidence: it disagrees on every record
        row["shadow"]["prediction"] = 1 - int(row["shadow"]["prediction"])
    assert (
        challenger_metrics(config, compare(env.stores, config, Task.BINARY, 2, shadowed, []))["ChallengerDisagreement"]
        > 0.9
    )

    set_challenger(env.stores, "breast-cancer", 1, mode="canary", percent=50, reason="canary v1", actor="test")
    rows = data.drop(columns=["target"]).iloc[100:500].to_dict("records")
    for i in range(0, len(rows), 50):
        _predict(rows[i : i + 50])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"mlops":"capture"')]
    canary = [row for line in lines for row in capture.flatten(line)]
    answered_by_v1 = sum(r.get("role") == CHALLENGER for r in canary)
    assert answered_by_v1 >= config.monitoring.min_samples  # enough for the canary's alarms to be judged

    result = compare(env.stores, config, Task.BINARY, 2, shadowed + canary, [])
    assert result["mode"] == "canary"
    assert result["records"] == {"champion": len(canary) - answered_by_v1, "challenger": answered_by_v1}
    assert "disagreement" not in result and result["errors"] == 0
    published = challenger_metrics(config, result)
    assert "ChallengerDisagreement" not in published and published["ChallengerRecords"] == answered_by_v1
    assert result["since"] == env.stores.meta.get_alias_item("breast-cancer", CHALLENGER)["since"]
