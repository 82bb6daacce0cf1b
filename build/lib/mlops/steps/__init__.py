"""The pipeline steps: one function per step, reading and writing through the stores of a StepContext
(the artifact store, the metadata store) — the steps do their own I/O, always through those ports.

Each takes artifact references (``{"uri", "sha256", "size"}``) as keyword arguments, writes under
``runs/<run_id>/<step>/`` and returns its record (:mod:`mlops.core.results`): references and small numbers,
which its handler hands to the state machine as JSON.
"""
