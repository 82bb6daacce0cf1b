"""The pipeline steps: pure, typed functions over the stores in a StepContext.

Each takes artifact references (``{"uri", "sha256", "size"}``) as keyword arguments, writes under
``runs/<run_id>/<step>/`` and returns a small JSON-serialisable dict of references and numbers.
"""

from typing import Any

Ref = dict[str, Any]
