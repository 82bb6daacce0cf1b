"""``mlops init``: a project of one's own that depends on the platform (a pinned version) instead of copying it."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops import __version__
from mlops.tools.samples import STARTER

REQUIREMENTS = f"""# The platform, pinned: upgrading is a version bump here (then `cdk diff` shows what changes).
serverless-mlops[pipeline,infra,cli]=={__version__}
pytest>=8
cfn-lint>=1.0
"""
GITIGNORE = """.venv/
.mlops/
cdk.out/
node_modules/
__pycache__/
"""


def init_project(target: Path) -> list[Path]:
    """Write the starter project into ``target`` (new or empty); return the files written."""
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} is not empty: `mlops init` writes a new project into a new or empty folder")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(STARTER.rglob("*")):
        if source.is_dir() or "__pycache__" in source.parts:
            continue
        dest = target / source.relative_to(STARTER)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
        written.append(dest)
    for name, text in (("requirements.txt", REQUIREMENTS), (".gitignore", GITIGNORE)):
        (target / name).write_text(text)
        written.append(target / name)
    for script in (target / "scripts").glob("*"):
        script.chmod(0o755)
    return written
