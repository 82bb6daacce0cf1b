"""Many models, one platform: each model adds only its own resources; a bad set of models fails synthesis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlops.core.config import ConfigError
from mlops.infra.app import build, make_app
from mlops.infra.settings import settings_from_context
from mlops.local.template import load_templates, resources_of_type, state_machine_definition
from mlops.tools.samples import example_config_path
from tests.infra.test_stacks import _statements

# What one more model adds, by stack (a model with a retraining schedule and a monitor schedule):
PER_MODEL = {
    "Pipeline": 1,  # its config parameter (the catalog is one parameter for all)
    "Triggers": 2,  # its retraining schedule rule and the rule's permission to invoke the trigger
    # monitor schedule rule + permission; drift, quality, prediction, data and 4 challenger alarms (a classifier adds
    # its estimated-quality alarm: these models are regressors, which get none)
    "Monitoring": 10,
    "Serving": 9,  # /models/<name>, …/predict, …/feedback: 3 resources, 3 methods, 3 invoke permissions
    "Storage": 0,  # lifecycle rules are properties of the one artifact bucket
}


def _model(tmp: Path, name: str, prefix: str, **sections: object) -> Path:
    raw = yaml.safe_load(example_config_path("diabetes").read_text())
    raw["name"], raw["data"]["prefix"] = name, prefix
    raw.update(sections)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _synth(outdir: Path, models: list[Path]) -> dict[str, dict]:
    context = json.loads((Path(__file__).parents[2] / "cdk.json").read_text())["context"]
    dev = {**context["environments"]["dev"], "models": [str(m) for m in models]}
    app = make_app(
        context={"mlops:skip_layer_build": "true", "environments": {**context["environments"], "dev": dev}},
        outdir=str(outdir),
    )
    build(app, settings_from_context(app.node.try_get_context))
    app.synth()  # cdk-nag included
    return {k.removeprefix("Mlops-dev-"): v for k, v in load_templates(outdir).items()}


def _counts(templates: dict[str, dict]) -> dict[str, int]:
    return {stack: len(t.get("Resources", {})) for stack, t in templates.items()}


def test_given_one_two_and_three_models_then_each_adds_the_stated_resources_and_shares_the_compute(tmp_path):
    one = [example_config_path("breast-cancer")]
    two = [*one, example_config_path("diabetes")]
    # The third model promotes its challengers by policy: only then may the monitor write the registry.
    three = [*two, _model(tmp_path, "churn", "churn/", registry={"challenger_auto_promote": {"min_labels": 200}})]
    t1, t2 = (_synth(tmp_path / f"out{len(m)}", m) for m in (one, two))
    t3 = _synth(tmp_path / "out3", three)
    counts = [_counts(t) for t in (t1, t2, t3)]
    for templates, writes in ((t1, False), (t2, False), (t3, True)):
        monitor = json.dumps(_statements(templates["Monitoring"], "MonitorRole"))
        assert ("dynamodb:PutItem" in monitor) is writes
    for stack, added in PER_MODEL.items():
        assert counts[1][stack] - counts[0][stack] == added, (stack, counts)
        assert counts[2][stack] - counts[1][stack] == added, (stack, counts)
    assert sum(PER_MODEL.values()) == 22
    # Shared compute: one training and one scoring state machine, one trigger, one serve function and one API for
    # all three models.
    assert len(resources_of_type(t3["Pipeline"], "AWS::StepFunctions::StateMachine")) == 2
    assert len(resources_of_type(t3["Serving"], "AWS::ApiGateway::RestApi")) == 1
    assert len(resources_of_type(t3["Triggers"], "AWS::Lambda::Function")) == 1
    assert len(resources_of_type(t3["Pipeline"], "AWS::Lambda::Function")) == len(
        resources_of_type(_synth(tmp_path / "again1", one)["Pipeline"], "AWS::Lambda::Function")
    )
    state_machine_definition(t3["Pipeline"])  # still exactly one training state machine
    state_machine_definition(t3["Pipeline"], machine="Scoring")
    # Before labels, only a classifier's accuracy can be estimated: one estimated-quality alarm, breast-cancer's.
    estimated = [
        a
        for a in resources_of_type(t3["Monitoring"], "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "EstimatedShortfall"
    ]
    assert len(estimated) == 1 and estimated[0]["Properties"]["Dimensions"] == [
        {"Name": "Model", "Value": "breast-cancer"}
    ]
    # Far below CloudFormation's 500 per stack: the largest stack with 25 models.
    for stack, added in PER_MODEL.items():
        assert counts[0][stack] + 24 * added < 500, stack
    # Each model's throttle on its own routes (an even share of the stage's by default).
    (stage,) = resources_of_type(t3["Serving"], "AWS::ApiGateway::Stage").values()
    settings = {(m["ResourcePath"], m["HttpMethod"]): m for m in stage["Properties"]["MethodSettings"]}
    churn = settings[("/~1models~1churn~1predict", "POST")]
    assert churn["ThrottlingRateLimit"] == pytest.approx(100 / 3) and churn["ThrottlingBurstLimit"] == 66
    # The catalog names every model's config parameter; every function reads it, none reads the bootstrap bucket.
    params = {
        p["Properties"]["Name"]: p["Properties"]["Value"]
        for p in resources_of_type(t3["Pipeline"], "AWS::SSM::Parameter").values()
    }
    catalog = json.loads(params["/Mlops-dev/catalog"])["models"]
    assert sorted(catalog) == ["breast-cancer", "churn", "diabetes"]
    assert all(entry["parameter"] in params for entry in catalog.values())


def test_given_overlapping_prefixes_then_synthesis_fails_naming_the_file_and_field(tmp_path):
    inner = _model(tmp_path, "inner", "breast-cancer/inner/")
    with pytest.raises(ConfigError) as err:
        _synth(tmp_path / "out", [example_config_path("breast-cancer"), inner])
    message = str(err.value)
    assert str(inner) in message and "data.prefix" in message and "breast-cancer" in message


def test_given_two_configs_with_one_name_then_synthesis_fails_naming_both_files(tmp_path):
    twin = _model(tmp_path, "breast-cancer", "twin/")
    with pytest.raises(ConfigError) as err:
        _synth(tmp_path / "out", [example_config_path("breast-cancer"), twin])
    assert str(twin) in str(err.value) and "name" in str(err.value)
    assert str(example_config_path("breast-cancer")) in str(err.value)
