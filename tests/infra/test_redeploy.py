"""The second `cdk deploy`: synthesize twice with a one-line code change between, and apply CloudFormation's
rule that an export another stack imports may not change (aws/aws-cdk#1972)."""

from __future__ import annotations

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


def _imports(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {json.dumps(node["Fn::ImportValue"], sort_keys=True)} if "Fn::ImportValue" in node else set()
        return found.union(*(_imports(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_imports(v) for v in node)) if node else set()
    return set()


def _synth(outdir: Path) -> dict[str, dict[str, Any]]:
    from infra.app import build, make_app
    from infra.settings import settings_from_context

    app = make_app(context={"mlops:skip_layer_build": "true", "env": "dev"}, outdir=str(outdir))
    build(app, settings_from_context(app.node.try_get_context))
    app.synth()
    return load_templates(outdir)


def test_given_a_one_line_code_change_when_redeployed_then_no_imported_export_changes(tmp_path, monkeypatch):
    import layers.build

    before = _synth(tmp_path / "before")
    source = tmp_path / "src" / "mlops"
    shutil.copytree(layers.build.SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "clock.py").open("a") as fh:
        fh.write("\n# a one-line change\n")
    monkeypatch.setattr(layers.build, "SOURCE", source)
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
