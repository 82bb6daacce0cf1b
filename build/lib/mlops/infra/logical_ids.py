"""Logical ids that do not move when an environment's stacks move into a delivery pipeline's stage.

A few CDK constructs name a resource after another construct's unique id, which is its path from the app and so
includes the stage. For most (permissions, statement ids) a rename is a harmless replacement; where CloudFormation
would create the new resource before deleting the old one and the two collide (an API key's usage-plan key), the
logical id is pinned to what the same stack has outside a stage. This is CDK's own ``makeUniqueId``.
"""

from __future__ import annotations

import hashlib
import re

from aws_cdk import Stack, Stage

from constructs import IConstruct

_MAX_HUMAN = 240


def make_unique_id(components: list[str]) -> str:
    """CDK's ``makeUniqueId`` (core/lib/private/uniqueid.ts)."""
    components = [c for c in components if c != "Default"]
    if len(components) == 1:
        candidate = re.sub(r"[^A-Za-z0-9]", "", components[0])
        if len(candidate) <= _MAX_HUMAN:
            return candidate
    digest = hashlib.md5("/".join(components).encode(), usedforsecurity=False).hexdigest()[:8].upper()
    human: list[str] = []
    for c in components:
        if not human or human[-1] != c:
            human.append(c)
    text = "".join(re.sub(r"[^A-Za-z0-9]", "", c) for c in human if c != "Resource")[:_MAX_HUMAN]
    return text + digest


def stage_free_unique_id(node: IConstruct) -> str:
    """``Names.nodeUniqueId(node)`` as it would be if no stage enclosed the node's stack."""
    return make_unique_id([s.node.id for s in node.node.scopes[1:] if not isinstance(s, Stage)])


def logical_id_within(scope: IConstruct, child_id: str) -> str:
    """The logical id CDK gives ``scope/child_id`` (a resource directly under ``scope``) in its stack."""
    scopes = scope.node.scopes
    stack_at = max(i for i, s in enumerate(scopes) if isinstance(s, Stack))
    return make_unique_id([s.node.id for s in scopes[stack_at + 1 :]] + [child_id])
