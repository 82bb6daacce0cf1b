"""Domain errors. Their class names become Step Functions error names, so Catch can match them."""

from __future__ import annotations

from typing import Any


class MlopsError(Exception):
    """Base class for errors the pipeline reports as a failed run (not retried)."""


class DataValidationError(MlopsError):
    """The data cannot be used: it carries the anomaly records that say why."""

    def __init__(
        self, message: str, anomalies: list[dict[str, Any]] | None = None, report_uri: str | None = None
    ) -> None:
        super().__init__(message)
        self.anomalies = anomalies or []
        self.report_uri = report_uri


class SourceObjectMissingError(MlopsError):
    """An object a run was to read is gone: deleted (or that version removed) after it landed and before the run
    read it. Its own name, rather than S3's ``Not Found``, so the run record says which object and what to do."""


class DataTooLargeError(MlopsError):
    """The extraction would exceed the configured size guard."""


class ModelExportError(MlopsError):
    """The trained pipeline could not be converted to ONNX or failed its parity check."""


class RegistryError(MlopsError):
    """An invalid registry operation (unknown version, nothing to roll back to, …)."""


class TransientError(Exception):
    """A throttle or a passing AWS fault: the state machine retries this error name with backoff."""
