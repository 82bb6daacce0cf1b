"""The second `cdk deploy`: synthesize twice with a one-line code change between, and apply CloudFormation's
rule that an export another stack imports may not change (aws/aws-cdk#1972)."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlops.local.template import load_templates

pytestmark = [pytest.mark.infra, pytest.mark.slow]

# Resource types CloudFormation replaces on any property change (new physical id, new ARN) ...
IMMUTABLE = {"AWS::Lambda::LayerVersion", "AWS::Lambda::Version"}
# ... and properties whose change replaces a resource of a mutable type.
REPLACING = {
    "AWS::S3::Bucket": ("BucketName",),
    "AWS::DynamoDB::GlobalTable": ("TableName", "KeySchema"),
    "AWS::StepFunctions::StateMachine": ("StateMachineName", "StateMachineType"),
    "AWS::SNS::Topic": ("TopicName", "FifoTopic"),
    "AWS::SQS::Queue": ("QueueName", "FifoQueue"),
    "AWS::Lambda::Function": ("FunctionName",),
    "AWS::SSM::Parameter": ("Name",),
    "AWS::IAM::Role": ("RoleName", "Path"),
    "AWS::KMS::Key": (),
}


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        if "Ref" in node:
            return {node["Ref"]}
        if "Fn::GetAtt" in node:
            return {node["Fn::GetAtt"][0]}
        return set().union(*(_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _replaced(res: dict[str, Any], nxt: dict[str, Any] | None) -> bool:
    if nxt is None or nxt["Type"] != res["Type"]:
        return True
    props, new_props = res.get("Properties") or {}, nxt.get("Properties") or {}
    if res["Type"] in IMMUTABLE:
        return bool(props != new_props)
    return any(props.get(p) != new_props.get(p) for p in REPLACING.get(res["Type"], ()))


def replaced(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """Logical ids whose physical resource CloudFormation would replace going from ``before`` to ``after``."""
    old, new = before.get("Resources", {}), after.get("Resources", {})
    out = {logical for logical, res in old.items() if _replaced(res, new.get(logical))}
    changed = True
    while changed:  # an immutable resource that points at a replaced one is replaced too
        changed = False
        for logical, res in old.items():
            if logical not in out and res["Type"] in IMMUTABLE and _refs(res.get("Properties")) & out:
                out.add(logical)
                changed = True
    return out


def blocked_exports(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[str]:
    """Exports in use by another stack whose value would change (or vanish): CloudFormation refuses those updates."""
    imported = {m for t in before.values() for m in _imports(t)}
    problems = []
    for stack, template in before.items():
        gone = replaced(template, after[stack])
        for key, out in template.get("Outputs", {}).items():
            if "Export" not in out:
                continue
            name = json.dumps(out["Export"]["Name"], sort_keys=True)
            if name not in imported:
                continue
            new_out = after[stack].get("Outputs", {}).get(key)
            if new_out is None or new_out["Value"] != out["Value"] or _refs(out["Value"]) & gone:
                problems.append(f"{stack}: export {key} (value {out['Value']}) changes but is imported")
    return problems


# Physical names unique in an account and region: CloudFormation creates a resource before it deletes the one
# it replaces, so a name that moves to another logical id fails the update ("already exists").
UNIQUE_NAMES = {
    "AWS::SSM::Parameter": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::GlobalTable": "TableName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Events::Rule": "Name",
}


def _named(templates: dict[str, dict[str, Any]]) -> dict[tuple[str, str], tuple[str, str]]:
    out = {}
    for stack, template in templates.items():
        for logical, res in template.get("Resources", {}).items():
            prop = UNIQUE_NAMES.get(res["Type"])
            name = (res.get("Properties") or {}).get(prop) if prop else None
            if name is not None:
                out[(res["Type"], json.dumps(name, sort_keys=True))] = (stack, logical)
    return out


def name_collisions(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[str]:
    """Resources the update would create under a physical name that an existing resource of another logical id
    (or stack) still holds."""
    old, new = _named(before), _named(after)
    return [
        f"{where[0]}/{where[1]}: {kind} {name} is still held by {old[(kind, name)][0]}/{old[(kind, name)][1]}"
        for (kind, name), where in sorted(new.items())
        if (kind, name) in old and old[(kind, name)] != where
    ]


def _imports(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {json.dumps(node["Fn::ImportValue"], sort_keys=True)} if "Fn::ImportValue" in node else set()
        return found.union(*(_imports(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_imports(v) for v in node)) if node else set()
    return set()


def _synth(
    outdir: Path, models: list[str] | None = None, feature_sets: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    from mlops.infra.app import build, make_app
    from mlops.infra.settings import settings_from_context

    context: dict[str, Any] = {"mlops:skip_layer_build": "true", "env": "dev"}
    if models is not None or feature_sets is not None:
        environments = json.loads((Path(__file__).parents[2] / "cdk.json").read_text())["context"]["environments"]
        dev = dict(environments["dev"])
        dev.update({k: v for k, v in (("models", models), ("feature_sets", feature_sets)) if v is not None})
        context["environments"] = {**environments, "dev": dev}
    app = make_app(context=context, outdir=str(outdir))
    build(app, settings_from_context(app.node.try_get_context))
    app.synth()
    return load_templates(outdir)


def test_given_a_one_line_code_change_when_redeployed_then_no_imported_export_changes(tmp_path, monkeypatch, synth):
    import mlops.layers.build

    before = synth.templates  # the session's synthesis of dev: the same context as `_synth`'s
    source = tmp_path / "src" / "mlops"
    shutil.copytree(mlops.layers.build.SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "clock.py").open("a") as fh:
        fh.write("\n# a one-line change\n")
    monkeypatch.setattr(mlops.layers.build, "SOURCE", source)
    after = _synth(tmp_path / "after")

    changed_layers = {s: replaced(before[s], after[s]) for s in before}
    assert any(changed_layers.values()), "the code change did not reach the code layer: the test proves nothing"
    assert blocked_exports(before, after) == []


def test_given_a_changed_layer_exported_to_another_stack_then_the_check_reports_it():
    """The checker itself: the shape of the old app (a layer version exported and imported) is caught."""
    layer = {"Type": "AWS::Lambda::LayerVersion", "Properties": {"Content": {"S3Key": "a.zip"}}}
    export = {"Value": {"Ref": "CodeLayer"}, "Export": {"Name": "Pipeline:ExportsOutputRefCodeLayer"}}
    before = {
        "Pipeline": {"Resources": {"CodeLayer": layer}, "Outputs": {"CodeLayerOut": export}},
        "Serving": {
            "Resources": {
                "Fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {"Layers": [{"Fn::ImportValue": "Pipeline:ExportsOutputRefCodeLayer"}]},
                }
            }
        },
    }
    after = json.loads(json.dumps(before))
    after["Pipeline"]["Resources"]["CodeLayer"]["Properties"]["Content"]["S3Key"] = "b.zip"
    assert blocked_exports(before, after) == [
        "Pipeline: export CodeLayerOut (value {'Ref': 'CodeLayer'}) changes but is imported"
    ]
    assert blocked_exports(before, json.loads(json.dumps(before))) == []


FIXTURES = Path(__file__).parent / "fixtures"
SHARED = (
    "AWS::StepFunctions::StateMachine",
    "AWS::ApiGateway::RestApi",
    "AWS::DynamoDB::GlobalTable",
    "AWS::S3::Bucket",
    "AWS::Lambda::Function",
)


def test_given_the_release_before_many_models_when_upgraded_then_no_physical_name_is_created_twice(synth):
    """The previous release named its one config parameter /Mlops-dev/models/breast-cancer/config under another
    logical id: a new resource of that name would be created before the old one is deleted, and the update fail."""
    previous = json.loads((FIXTURES / "release-6bc02f8-named.json").read_text())["templates"]
    assert name_collisions(previous, synth.templates) == []


def test_given_a_model_added_then_retired_then_nothing_shared_is_replaced_and_no_name_collides(tmp_path, synth):
    environments = json.loads((Path(__file__).parents[2] / "cdk.json").read_text())["context"]["environments"]
    assert environments["dev"]["models"] == ["models/breast-cancer.yaml", "models/diabetes.yaml"]  # = synth's
    one = ["models/breast-cancer.yaml"]
    states = [_synth(tmp_path / "s0", one), synth.templates, _synth(tmp_path / "s2", one)]
    for before, after in itertools.pairwise(states):
        assert name_collisions(before, after) == []
        assert blocked_exports(before, after) == []
        for stack, template in before.items():
            shared = {k for k, r in template["Resources"].items() if r["Type"] in SHARED}
            assert not (replaced(template, after[stack]) & shared), stack


def test_given_a_name_moved_to_another_logical_id_then_the_check_reports_it():
    param = {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "/x/config", "Value": "{}"}}
    before = {"Pipeline": {"Resources": {"Old": param}}}
    assert name_collisions(before, {"Pipeline": {"Resources": {"New": param}}}) == [
        'Pipeline/New: AWS::SSM::Parameter "/x/config" is still held by Pipeline/Old'
    ]
    assert name_collisions(before, before) == []


def test_given_the_feature_store_added_to_a_deployment_then_nothing_shared_is_replaced_and_no_name_collides(
    tmp_path, synth
):
    """A deployment without feature sets gains the online table, its ingestion function, rule and parameters (dev's
    cdk.json lists feature_sets/): an update CloudFormation can apply."""
    environments = json.loads((Path(__file__).parents[2] / "cdk.json").read_text())["context"]["environments"]
    assert environments["dev"]["feature_sets"] == ["feature_sets/"]  # = synth's
    before, after = _synth(tmp_path / "without", feature_sets=[]), synth.templates
    assert not [k for k in before["Mlops-dev-Storage"]["Resources"] if "FeatureStore" in k]
    assert [k for k in after["Mlops-dev-Storage"]["Resources"] if "FeatureStore" in k]
    assert name_collisions(before, after) == []
    assert blocked_exports(before, after) == []
    for stack, template in before.items():
        shared = {k for k, r in template["Resources"].items() if r["Type"] in SHARED}
        assert not (replaced(template, after[stack]) & shared), stack
