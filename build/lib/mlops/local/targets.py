"""What an EventBridge rule hands its target: the event itself, a constant ``Input``, or the event rewritten by
an ``InputTransformer`` (``InputPathsMap`` + ``InputTemplate``), as EventBridge does it."""

from __future__ import annotations

import json
import re
from typing import Any

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def _path(event: Any, path: str) -> Any:
    """A simple JSON path (``$``, ``$.a.b``) into the event; None where it leads nowhere."""
    node = event
    for part in [p for p in path.removeprefix("$").split(".") if p]:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """The payload ``target`` receives for ``event``."""
    if target.get("Input"):
        return json.loads(target["Input"])
    if target.get("InputPath"):
        return _path(event, target["InputPath"])
    transformer = target.get("InputTransformer")
    if not transformer:
        return event
    values = {name: _path(event, path) for name, path in (transformer.get("InputPathsMap") or {}).items()}
    template: str = transformer["InputTemplate"]

    def quoted(match: re.Match[str]) -> str:  # "<var>": the value as JSON (a string stays a string)
        name = match.group(1)
        return json.dumps(values[name]) if name in values else match.group(0)

    def inline(match: re.Match[str]) -> str:  # <var> inside a longer string, or bare: the value as text / JSON
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        return value if isinstance(value, str) and _inside_string(template, match.start()) else json.dumps(value)

    text = re.sub(r'"<([A-Za-z0-9_.\-]+)>"', quoted, template)
    text = _PLACEHOLDER.sub(inline, text)
    try:
        return json.loads(text)
    except ValueError:
        return text  # a template that is not JSON is delivered as a string, as EventBridge does


def _inside_string(text: str, position: int) -> bool:
    """Whether ``position`` in a JSON text is inside a string literal."""
    inside, escaped = False, False
    for ch in text[:position]:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            inside = not inside
    return inside
