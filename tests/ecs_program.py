"""A container's program for the emulator's ECS task tests (tests/functional/test_ecs_tasks.py): what it does is
what ``PROGRAM`` in its environment says."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> int:
    what = os.environ.get("PROGRAM", "")
    print(f"program {what} with RUN={os.environ.get('RUN')}", flush=True)
    if what == "ok":
        Path(os.environ["OUT"]).write_text(os.environ.get("RUN", ""))
        return 0
    if what == "fail":
        print("Traceback (most recent call last): ValueError: the split could not be read", flush=True)
        return 3
    if what == "grow":
        hog = []
        while True:
            hog.append(bytearray(32 * 1024 * 1024))
            time.sleep(0.01)
    return 2


if __name__ == "__main__":
    sys.exit(main())
