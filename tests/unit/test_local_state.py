"""The emulator's state files are shared by processes (the CLI, other emulators, test workers): a reader sees
the old file or the new one, never a half-written one."""

from __future__ import annotations

import json
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


def test_given_the_test_session_then_an_emulator_leaves_the_checkouts_local_json_alone():
    """#27: the tests ran emulators in the checkout's `.mlops/`: each start overwrote the local.json of a
    `mlops local up` running there, and each stop deleted it, so the CLI reported no endpoint."""
    from tests.conftest import REPO_ROOT

    checkout = REPO_ROOT / ".mlops" / "local.json"
    before = checkout.read_bytes() if checkout.exists() else None
    fake = types.SimpleNamespace(
        endpoint="http://127.0.0.1:1", env="dev", config_paths=["a.yaml"], p=types.SimpleNamespace(outputs={})
    )
    try:
        written = emulator.LocalCloud.write_local_file(fake)  # type: ignore[arg-type]
        after = checkout.read_bytes() if checkout.exists() else None
        assert written != checkout and after == before
        assert emulator.read_local_file() == json.loads(written.read_text())  # the tests' own, read back
    finally:
        if (emulator.read_local_file() or {}).get("endpoint") == fake.endpoint:
            (emulator.state_dir() / emulator.LOCAL_FILE).unlink()
        if before is None:
            checkout.unlink(missing_ok=True)
        else:
            checkout.write_bytes(before)
