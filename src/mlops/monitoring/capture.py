"""D1/D2: predictions and labels leave the serve function as log lines; the capture function ships them to S3.

Why log lines: a ``print`` of one JSON line costs microseconds and no network call on the request path,
and CloudWatch Logs keeps every line durably; a subscription filter hands matching lines to the capture
function (asynchronously, retried, then dead-lettered), which writes them as JSON Lines under
``captures/<model>/date=YYYY-MM-DD/`` and ``feedback/<model>/date=YYYY-MM-DD/``. A direct put to Kinesis
Data Firehose or S3 would put a network round trip (milliseconds) on every prediction. See README,
"Monitoring: how capture works".

The serve bundle imports this module: the standard library and orjson only.
"""

from __future__ import annotations

import array
import base64
import gzip
import hashlib
import json
import random
import struct
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from mlops.core.constants import CAPTURE_FIELD, CAPTURE_KIND, CAPTURES_PREFIX, FEEDBACK_KIND, FEEDBACK_PREFIX

# A CloudWatch Logs event is at most 256 KB: a request's capture is split into lines below this.
MAX_LINE_BYTES = 200_000


def iso(when: datetime) -> str:
    """``2026-12-06T02:30:00.123456Z`` (``isoformat`` less its ``+00:00``: a third faster than ``strftime``)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def sampled(rate: float, draw: float | None = None) -> bool:
    """Whether this request is captured (``rate`` 1 captures all, 0 none)."""
    if rate >= 1:
        return True
    if rate <= 0:
        return False
    return (random.random() if draw is None else draw) < rate


def _lines(head: dict[str, Any], key: str, items: list[dict[str, Any]]) -> Iterator[str]:
    """``head`` plus ``items`` under ``key`` as JSON lines, each under the log event limit: every item is
    serialized once and the lines are packed greedily (an item larger than the limit goes alone)."""
    prefix = orjson.dumps(head, default=str)[:-1] + b',"' + key.encode() + b'":['
    parts = [orjson.dumps(item, default=str) for item in items]
    line: list[bytes] = []
    size = len(prefix) + 2
    for part in parts:
        if line and size + len(part) + 1 > MAX_LINE_BYTES:
            yield (prefix + b",".join(line) + b"]}").decode()
            line, size = [], len(prefix) + 2
        line.append(part)
        size += len(part) + 1
    yield (prefix + b",".join(line) + b"]}").decode()


@dataclass(frozen=True)
class Answered:
    """One model's answers to one request, as the serve path holds them: whole columns and arrays, no per-row
    objects. A capture line is built from it (:func:`capture_lines`) and exploded into rows by the capture
    function (:func:`flatten`).

    ``numbers``: the numeric inputs as the graph was fed them (a C-ordered (n, k) float32 array, NaN for a missing
    value) and ``numeric`` their names; ``text``: each categorical input's values as strings ("" for a missing
    one); ``predictions``: one per row; ``probabilities``: an (n, classes) array (rounded as answered) or None;
    ``ids``: the id column's values, when the model has one."""

    numeric: list[str]
    numbers: Any
    text: dict[str, Any]
    predictions: list[Any]
    probabilities: Any = None
    classes: list[str] = field(default_factory=list)
    ids: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.predictions)

    def rows(self, start: int, stop: int) -> dict[str, Any]:
        """The fields of a line for rows [start, stop): names once, values as arrays."""
        out: dict[str, Any] = {"format": COLUMNS_FORMAT, "offset": start}
        if self.numeric:
            out["numeric"] = self.numeric
            out["x"] = base64.b64encode(self.numbers[start:stop].tobytes()).decode()  # float32, little-endian
        if self.text:
            out["text"] = {name: values[start:stop] for name, values in self.text.items()}
        out["prediction"] = self.predictions[start:stop]
        if self.probabilities is not None:
            out["classes"] = self.classes
            out["proba"] = self.probabilities[start:stop]
        if self.ids is not None:
            out["ids"] = self.ids[start:stop]
        return out


COLUMNS_FORMAT = 2  # a capture line of columns (names once per request); lines without "format" have a row each
_JSON = orjson.OPT_SERIALIZE_NUMPY  # numpy arrays as they are (NaN is null); no per-value Python objects


def capture_lines(
    *,
    model: str,
    version: int,
    request_id: str,
    answered: Answered,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> list[str]:
    """The log lines recording one answered request: each field name once, the values as the serve path holds
    them — the numbers as the graph was fed them (the float32 matrix's bytes in base64: no number is formatted as
    text, and 5⅓ characters a value against ~8 as JSON text), the categories as strings — and the predictions
    and probabilities as answered.

    A request too large for one log event is split into lines by row range (each carries its ``offset``).
    ``extra``: what else each line carries (the handler's ``ms``; ``role: challenger`` for a canary's answers; a
    shadow's ``version``, ``predictions`` and ``ms``)."""
    head = {CAPTURE_FIELD: CAPTURE_KIND, "model": model, "version": version, "request_id": request_id, "time": iso(now)}
    if extra:
        head.update(extra)
    return [line.decode() for line in _split(head, answered, 0, len(answered))]


def _split(head: dict[str, Any], answered: Answered, start: int, stop: int) -> Iterator[bytes]:
    line = orjson.dumps({**head, **answered.rows(start, stop)}, default=str, option=_JSON)
    if len(line) <= MAX_LINE_BYTES or stop - start <= 1:
        yield line
        return
    parts = -(-len(line) // (MAX_LINE_BYTES * 9 // 10))  # a tenth of headroom: rows are not all the same size
    step = -(-(stop - start) // parts)
    for first in range(start, stop, step):
        yield from _split(head, answered, first, min(first + step, stop))


def feedback_lines(*, model: str, request_id: str, labels: list[dict[str, Any]], now: datetime) -> list[str]:
    head = {CAPTURE_FIELD: FEEDBACK_KIND, "model": model, "request_id": request_id, "time": iso(now)}
    return list(_lines(head, "labels", labels))


def emit(lines: Iterable[str]) -> None:
    """Write to the function's log (stdout): what the subscription filter reads. One ``write`` and one flush for
    the request, whatever its number of lines (Lambda's runtime flushes stdout on every write, so a write per line
    was a syscall, and a wake-up of the log reader, per line); the reader still makes each line its own log
    event. Flushed before the answer leaves: an environment may be frozen as soon as it has answered."""
    out = sys.stdout
    out.write("".join([line + "\n" for line in lines]))
    out.flush()


# -- the capture function: from a CloudWatch Logs subscription delivery to S3 ------------------------------
def decode_subscription(event: dict[str, Any]) -> dict[str, Any]:
    """The ``awslogs.data`` payload of a subscription delivery: base64 of gzipped JSON."""
    try:
        data = event["awslogs"]["data"]
    except (KeyError, TypeError):
        raise ValueError("not a CloudWatch Logs subscription event: expected {'awslogs': {'data': ...}}") from None
    decoded: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(data)))
    return decoded


def _message_json(message: str) -> dict[str, Any] | None:
    """The capture record in a log event's message (Lambda's JSON log format may wrap it in a record)."""
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    if CAPTURE_FIELD not in obj and isinstance(obj.get("message"), dict):  # wrapped by the runtime
        obj = obj["message"]
    return obj if obj.get(CAPTURE_FIELD) in (CAPTURE_KIND, FEEDBACK_KIND) else None


def partition(kind: str, model: str, when: str) -> str:
    """``captures/<model>/date=YYYY-MM-DD/`` (or ``feedback/…``) for a record's ISO time."""
    prefix = CAPTURES_PREFIX if kind == CAPTURE_KIND else FEEDBACK_PREFIX
    return f"{prefix}{model}/date={when[:10]}/"


def _shadow_row(shadow: dict[str, Any], i: int) -> dict[str, Any]:
    """A shadow challenger's answer for record ``i`` (or its error), kept beside the champion's."""
    out: dict[str, Any] = {"version": shadow.get("version"), "ms": shadow.get("ms")}
    answers = shadow.get("predictions") or []
    if i < len(answers):
        out["prediction"] = answers[i].get("prediction")
        if answers[i].get("probabilities") is not None:
            out["probabilities"] = answers[i]["probabilities"]
    if shadow.get("error"):
        out["error"] = shadow["error"]
    return out


def flatten(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """One JSON Lines row per captured record (or per label); a shadow's answer rides on its record's row."""
    rows = _flatten(obj)
    shadow = obj.get("shadow")
    if isinstance(shadow, dict):
        for row in rows:
            row["shadow"] = _shadow_row(shadow, int(row.get("row", 0)))
    return rows


def _flatten(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj.get("format") == COLUMNS_FORMAT:
        return _explode(obj)
    skip = (CAPTURE_FIELD, "rows", "labels", "request", "predictions", "shadow")
    common = {k: v for k, v in obj.items() if k not in skip}
    if obj[CAPTURE_FIELD] == CAPTURE_KIND and "request" in obj:  # (before 0.2.1) the request as received
        records = (obj.get("request") or {}).get("records") or []
        answers = obj.get("predictions") or []
        rows: list[dict[str, Any]] = []
        for i, (record, answer) in enumerate(zip(records, answers, strict=False)):
            row = {"row": i, "features": record, "prediction": answer.get("prediction")}
            for key in ("probabilities", "id"):
                if answer.get(key) is not None:
                    row[key] = answer[key]
            rows.append(row)
        return [{**common, **row} for row in rows]
    items = obj.get("rows") if obj[CAPTURE_FIELD] == CAPTURE_KIND else obj.get("labels")
    return [{**common, **item} for item in items or [] if isinstance(item, dict)]


_COLUMNS = ("format", "offset", "numeric", "x", "text", "prediction", "classes", "proba", "ids", "shadow")


def _explode(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """A line of columns as one row per record, as the monitor reads them: ``features`` by name (a missing
    number or category is null), ``prediction``, ``probabilities`` by class and ``id``."""
    common = {k: v for k, v in obj.items() if k not in _COLUMNS and k != CAPTURE_FIELD}
    offset = int(obj.get("offset") or 0)
    predictions = obj.get("prediction") or []
    numeric = obj.get("numeric") or []
    x = _float32_rows(obj.get("x") or "", len(numeric))
    text = obj.get("text") or {}
    classes, proba, ids = obj.get("classes") or [], obj.get("proba"), obj.get("ids")
    rows = []
    for i, prediction in enumerate(predictions):
        features: dict[str, Any] = dict(zip(numeric, x[i], strict=True)) if numeric else {}
        for name, values in text.items():
            features[name] = values[i] if values[i] != "" else None
        row: dict[str, Any] = {**common, "row": offset + i, "features": features, "prediction": prediction}
        if proba is not None:
            row["probabilities"] = dict(zip(classes, proba[i], strict=True))
        if ids is not None and ids[i] is not None:
            row["id"] = ids[i]
        rows.append(row)
    return rows


def _float32_rows(text: str, width: int) -> list[list[float | None]]:
    """The numbers of a line (base64 of little-endian float32, row by row), each as the shortest decimal that
    is the same float32 (what was sent, when it was sent with float32's precision), NaN as None."""
    if not width:
        return []
    values = array.array("f", base64.b64decode(text))
    if sys.byteorder == "big":
        values.byteswap()
    plain = [_shortest(v) for v in values]
    return [plain[i : i + width] for i in range(0, len(plain), width)]


def _shortest(v: float) -> float | None:
    if v != v:  # NaN: a missing value
        return None
    for digits in range(1, 10):  # 9 significant digits always give the float32 back
        short = float(f"{v:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", short))[0] == v:
            return short
    return v


def shipments(delivery: dict[str, Any]) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """The rows of one delivery grouped by the S3 key they go to, and how many lines were not ours.

    Keys derive from the delivery's log stream and first event id, so a redelivered batch (Lambda's retry
    of an asynchronous invocation) overwrites its own objects instead of duplicating rows."""
    events = delivery.get("logEvents") or []
    if not events:
        return {}, 0
    token = hashlib.sha256(f"{delivery.get('logStream')}\x1f{events[0].get('id')}".encode()).hexdigest()[:16]
    out: dict[str, list[dict[str, Any]]] = {}
    ignored = 0
    for event in events:
        obj = _message_json(str(event.get("message", "")))
        if obj is None or not isinstance(obj.get("model"), str) or not isinstance(obj.get("time"), str):
            ignored += 1
            continue
        when = obj["time"]
        key = f"{partition(obj[CAPTURE_FIELD], obj['model'], when)}{when[11:13]}-{token}.jsonl"
        out.setdefault(key, []).extend(flatten(obj))
    return out, ignored


def to_jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":"), default=str) + "\n" for r in rows).encode()


def from_jsonl(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def ship(event: dict[str, Any], put: Any) -> dict[str, Any]:
    """Write one subscription delivery's captures and labels to S3 (``put(key, bytes)``); return counts."""
    delivery = decode_subscription(event)
    if delivery.get("messageType") == "CONTROL_MESSAGE":  # CloudWatch Logs' own check that the target works
        return {"objects": 0, "rows": 0, "ignored": 0}
    groups, ignored = shipments(delivery)
    for key, rows in groups.items():
        put(key, to_jsonl(rows))
    return {"objects": len(groups), "rows": sum(len(r) for r in groups.values()), "ignored": ignored}
