"""Container entry points: steps that run as ECS tasks (``python -m mlops.tasks.<step>``), adapters as the
functions' handlers are."""
