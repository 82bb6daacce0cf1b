"""The layer build's byte-code layouts: beside the sources where both fit, instead of them where only that fits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlops.layers.build import _compile_within, dir_size


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "python"
    pkg = site / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.mod import answer\n")
    body = "\n".join(f"def f{i}(x):\n    return x * {i} + len('{'padding' * 20}')" for i in range(200))
    (pkg / "mod.py").write_text(body + "\n\ndef answer():\n    return f41(1) - 181\n")
    return site


def _imports(site: Path) -> str:
    code = f"import sys; sys.path.insert(0, {str(site)!r}); import pkg; print(pkg.answer(), pkg.__file__)"
    return subprocess.run([sys.executable, "-I", "-B", "-c", code], capture_output=True, text=True, check=True).stdout


def test_given_room_for_both_then_byte_code_goes_beside_the_sources(tmp_path):
    site = _site(tmp_path)
    assert _compile_within(site, sys.executable, None) == (True, False)
    assert (site / "pkg" / "mod.py").exists() and list((site / "pkg" / "__pycache__").glob("mod.*.pyc"))


def test_given_room_for_byte_code_only_then_it_replaces_the_sources_and_still_imports(tmp_path):
    site = _site(tmp_path)
    sources = dir_size(site)
    assert _compile_within(site, sys.executable, sources) == (True, True)  # both would not fit in `sources`
    assert not list(site.rglob("*.py")) and not list(site.rglob("__pycache__"))
    assert (site / "pkg" / "mod.pyc").exists() and dir_size(site) <= sources
    answer, path = _imports(site).split()
    assert answer == "0" and path.endswith("__init__.pyc")


def test_given_no_room_even_for_byte_code_then_the_sources_stay_as_they_were(tmp_path):
    site = _site(tmp_path)
    before = sorted(p.relative_to(site) for p in site.rglob("*"))
    assert _compile_within(site, sys.executable, 100) == (False, False)
    assert sorted(p.relative_to(site) for p in site.rglob("*")) == before
    assert _imports(site).split()[0] == "0"
