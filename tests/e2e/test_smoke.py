"""The smoke test the delivery pipeline runs after each deploy (E4), run as CI runs it: `mlops smoke --emulator`
in a process of its own, against a fresh emulator of the project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_given_a_fresh_emulator_when_mlops_smoke_runs_then_health_a_run_that_registers_and_a_signed_predict_pass():
    mlops = Path(sys.executable).with_name("mlops")
    proc = subprocess.run(
        [str(mlops), "smoke", "--emulator"], cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    for check in ("health", "pipeline run registers a model", "signed predict"):
        assert any(line.strip().startswith("ok") and check in line for line in out.splitlines()), (check, out[-3000:])
    assert "FAIL" not in out
