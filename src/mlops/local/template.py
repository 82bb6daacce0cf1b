"""Reading the CDK app's synthesized CloudFormation templates: resources, outputs and the state machine.

The offline emulator and the tests take the state machine definition from here — never from a
second, hand-written copy of the control flow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Resolver = Callable[[dict[str, Any]], str]


def load_templates(outdir: Path) -> dict[str, dict[str, Any]]:
    """Every ``<stack>.template.json`` in a cloud assembly directory, by stack name."""
    return {p.name.removesuffix(".template.json"): json.loads(p.read_text()) for p in outdir.glob("*.template.json")}


def resources_of_type(template: dict[str, Any], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == cfn_type}


def render(value: Any, resolve: Resolver) -> Any:
    """Evaluate Fn::Join / Fn::Sub-free intrinsic expressions, handing Ref / GetAtt / ImportValue to ``resolve``."""
    if isinstance(value, dict):
        if "Fn::Join" in value:
            delimiter, parts = value["Fn::Join"]
            return delimiter.join(str(render(p, resolve)) for p in parts)
        if any(k in value for k in ("Ref", "Fn::GetAtt", "Fn::ImportValue")):
            return resolve(value)
        return {k: render(v, resolve) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, resolve) for v in value]
    return value


def placeholder_resolver(value: dict[str, Any]) -> str:
    """A readable stand-in for a reference, e.g. ``<FnextractFunction7AD03B63.Arn>``."""
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return f"<import:{value['Fn::ImportValue']}>"


def state_machine_definition(
    template: dict[str, Any], resolve: Resolver = placeholder_resolver, machine: str = "Training"
) -> dict[str, Any]:
    """The ASL definition of the state machine ``machine`` (its construct: ``Training``, ``Scoring``) from a stack
    template, references resolved by ``resolve``. A template with one state machine: that one."""
    machines = resources_of_type(template, "AWS::StepFunctions::StateMachine")
    if len(machines) > 1:
        machines = {k: m for k, m in machines.items() if k.startswith(machine)}
    if len(machines) != 1:
        raise ValueError(f"expected one {machine} state machine in the template, found {len(machines)}")
    (props,) = (m["Properties"] for m in machines.values())
    rendered = render(props["DefinitionString"], resolve)
    return json.loads(rendered) if isinstance(rendered, str) else rendered


def walk_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state by name, including those inside Map item processors and Parallel branches."""
    out: dict[str, dict[str, Any]] = {}
    for name, state in definition.get("States", {}).items():
        out[name] = state
        for nested in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if nested:
                out.update(walk_states(nested))
    return out
