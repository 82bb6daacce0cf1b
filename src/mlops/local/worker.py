"""One Lambda execution environment offline: a process that imports one handler and serves invocations.

Started by :class:`mlops.local.environments.Environments` as ``python -m mlops.local.worker <function>``
with the function's environment variables. It imports the handler once (the cold start), then reads
invocations from stdin and writes results to stdout, one length-prefixed JSON frame each, until stdin
closes. Whatever happens inside — a native abort, memory exhaustion, an endless loop — ends or stalls
this process only; the parent reports it as Lambda would and starts a fresh environment next time.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import time
import traceback
from typing import IO, Any

HEADER = struct.Struct(">Q")


def write_frame(stream: IO[bytes], obj: Any) -> None:
    data = json.dumps(obj, default=str).encode()
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    return json.loads(data) if len(data) == size else None


def _chaos(kind: str) -> None:
    """Faults that only a separate process can survive (tests and drills: `seams.inject_fault`)."""
    if kind == "abort":
        os.abort()  # what onnxruntime's failed assertion does
    if kind == "oom":
        hog = []
        while True:
            hog.append(bytearray(64 * 1024 * 1024))
            time.sleep(0.01)
    if kind == "hang":
        while True:
            time.sleep(1)
    if kind == "slow":  # then the handler runs as usual: overlapping invocations
        time.sleep(0.5)


class FunctionOutput(io.TextIOBase):
    """The function's stdout, as Lambda captures it for CloudWatch Logs: lines kept per invocation (and copied
    to stderr, the function's local log file). Handlers' prints must not corrupt the frame channel."""

    def __init__(self, copy: IO[str]) -> None:
        self._copy, self._partial = copy, ""
        self.lines: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._copy.write(text)
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        self.lines.extend(line for line in complete if line)
        return len(text)

    def flush(self) -> None:
        self._copy.flush()

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        if self._partial:
            lines.append(self._partial)
            self._partial = ""
        return lines


def main(function: str) -> None:
    channel_in, channel_out = sys.stdin.buffer, sys.stdout.buffer
    output = FunctionOutput(sys.stderr)
    sys.stdout = output
    from mlops.local.lambda_runtime import load_handler

    handler = load_handler(function)
    # The CPU the start took (interpreter, imports): unlike its wall time, not stretched by other work on the machine.
    write_frame(channel_out, {"ready": True, "pid": os.getpid(), "init_cpu_ms": time.process_time() * 1000})
    serve(handler, channel_in, channel_out, output)


def serve(handler: Any, channel_in: IO[bytes], channel_out: IO[bytes], output: FunctionOutput) -> None:
    """Answer invocations until the channel closes. Each runs at the emulator's clock: the offset its frame
    carries is this process's :mod:`mlops.core.clock` offset while the handler runs (and until the next frame)."""
    from mlops.core import clock
    from mlops.local.lambda_runtime import LocalContext

    while (request := read_frame(channel_in)) is not None:
        if request.get("chaos"):
            _chaos(request["chaos"])
        clock.set_offset(float(request.get("clock_offset_s") or 0.0))
        context = LocalContext(
            function_name=request["function_name"],
            timeout_s=request["timeout_s"],
            memory_limit_in_mb=request["memory_mb"],
            aws_request_id=request["request_id"],
        )
        t0, cpu0 = time.perf_counter(), time.process_time()
        try:
            result = {"payload": handler(request["event"], context), "error": False}
        except Exception as err:  # noqa: BLE001 — Lambda's contract: an unhandled error becomes a function error
            result = {
                "payload": {
                    "errorMessage": str(err),
                    "errorType": type(err).__name__,
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_exception(err)[-8:],
                },
                "error": True,
            }
        result["handler_ms"] = (time.perf_counter() - t0) * 1000  # Lambda's duration (with a cold start's init)
        result["cpu_ms"] = (time.process_time() - cpu0) * 1000  # of this process, every thread
        result["logs"] = output.take()
        write_frame(channel_out, result)


if __name__ == "__main__":
    main(sys.argv[1])
