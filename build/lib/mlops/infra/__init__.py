"""The platform's CDK app (public: :class:`MlopsApp`): storage, pipeline, triggers, serving and monitoring stacks for
a project's models, and the delivery pipeline that ships them. A project's ``app.py`` is two lines::

    from mlops.infra import MlopsApp
    MlopsApp(project_dir=Path(__file__).parent).synth()
"""

from __future__ import annotations

from typing import Any

__all__ = ["MlopsApp"]


def __getattr__(name: str) -> Any:
    # The CDK is imported when the app is asked for, not by whatever reads a setting of this package.
    if name == "MlopsApp":
        from mlops.infra.app import MlopsApp

        return MlopsApp
    raise AttributeError(name)
