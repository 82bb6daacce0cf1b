"""An ECS task's container offline: ``python -m mlops.local.container <clock offset> <module> [args]`` runs
``python -m <module> [args]`` at the emulator's clock (the offset ``mlops local tick --advance`` has moved it), as a
Lambda execution environment runs its handler (:mod:`mlops.local.worker`). Started by
:func:`mlops.local.environments.run_container`; in AWS the image's command runs the module itself."""

from __future__ import annotations

import runpy
import sys

CHAOS_ENV = "MLOPS_LOCAL_CHAOS"  # a fault the container meets first (tests and drills: seams.inject_task_fault)


def main() -> None:
    import os

    from mlops.core import clock
    from mlops.local.worker import _chaos

    offset, module, *args = sys.argv[1:]
    clock.set_offset(float(offset))
    fault = os.environ.pop(CHAOS_ENV, "")
    if fault.startswith("exit:"):  # the process fails as a crashing program does
        print(f"chaos: exiting with status {fault[5:]}", flush=True)
        sys.exit(int(fault[5:]))
    if fault:
        _chaos(fault)  # oom: allocate until killed; abort; hang
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
