"""The emulator's state files are shared by processes (the CLI, other emulators, test workers): a reader sees
the old file or the new one, never a half-written one."""

from __future__ import annotations

import threading
import types

from mlops.local import emulator


def test_given_a_writer_rewriting_local_json_then_a_reader_never_sees_a_torn_file(tmp_path, monkeypatch):
    monkeypatch.setattr(emulator, "state_dir", lambda: tmp_path)
    fake = types.SimpleNamespace(
        endpoint="http://127.0.0.1:1", env="dev", config_paths=["a.yaml"], p=types.SimpleNamespace(outputs={})
    )
    fake.p.outputs = {f"Output{i}": "x" * 200 for i in range(200)}  # a file large enough to be written in parts
    emulator.LocalCloud.write_local_file(fake)  # type: ignore[arg-type]
    stop = threading.Event()

    def rewrite() -> None:
        while not stop.is_set():
            emulator.LocalCloud.write_local_file(fake)  # type: ignore[arg-type]

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        seen = [emulator.read_local_file() for _ in range(3000)]  # raised JSONDecodeError on a truncated file
    finally:
        stop.set()
        writer.join()
    assert all(s is not None and s["endpoint"] == fake.endpoint for s in seen)
