"""The SQL engine of the data steps: DuckDB over Parquet files on local disk, in bounded memory.

A step reads its table through the artifact port into a file under ``/tmp`` (DuckDB's ``httpfs`` is fetched at run
time and reaches neither a locked-down account nor the offline emulator) and queries it with a connection whose
buffer manager is held to ``memory_limit``, spilling to ``temp_directory`` past it: what the step holds is bounded
by the limit, not by the data."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops.core.constants import ENV_DATA_MEMORY_SHARE, ENV_FUNCTION_MEMORY

if TYPE_CHECKING:
    import duckdb

# The share of the function's memory DuckDB may use: the rest is the interpreter, the imported modules, the
# artifacts a step keeps as Python values and what DuckDB allocates outside its buffer manager.
MEMORY_SHARE = 0.5
OFF_LAMBDA_MEMORY_MB = 2048  # the data functions' own size (mlops.infra.functions), for runs outside Lambda
TMP_ROOT = "/tmp"  # Lambda's only writable path (ephemeral storage, 512 MB unless the function sets more)


@dataclass(frozen=True)
class EngineLimits:
    """What one connection may use: memory (MB), threads, and where it spills; and how much of the ephemeral
    storage under ``temp_root`` a step may fill (``disk_mb``; None: what is free there when it is asked)."""

    memory_mb: int
    threads: int
    temp_root: str = TMP_ROOT
    disk_mb: int | None = None

    def disk_bytes(self) -> int:
        """The bytes a step may write under ``temp_root``: ``disk_mb``, else the free space there now."""
        if self.disk_mb is not None:
            return self.disk_mb * 1024 * 1024
        return shutil.disk_usage(self.temp_root).free

    @classmethod
    def for_function(
        cls, function_memory_mb: int | None = None, *, share: float | None = None, threads: int | None = None
    ) -> EngineLimits:
        """The limits inside a function of ``function_memory_mb`` (else the running Lambda's size, else
        ``OFF_LAMBDA_MEMORY_MB``), DuckDB holding ``share`` of it (else ``MLOPS_DATA_MEMORY_SHARE``, else
        ``MEMORY_SHARE``), on every CPU the process may run on. Explicit arguments beat the environment."""
        memory = function_memory_mb or int(os.environ.get(ENV_FUNCTION_MEMORY) or OFF_LAMBDA_MEMORY_MB)
        fraction = share if share is not None else float(os.environ.get(ENV_DATA_MEMORY_SHARE) or MEMORY_SHARE)
        if not 0 < fraction <= 1:
            raise ValueError(f"{ENV_DATA_MEMORY_SHARE}={fraction}: give a share of the function's memory in (0, 1]")
        return cls(memory_mb=max(64, int(memory * fraction)), threads=threads or _cpus())


def _cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return max(1, len(affinity(0)) if affinity else os.cpu_count() or 1)


@contextmanager
def connect(limits: EngineLimits) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection held to ``limits``, spilling to a directory of its own under ``temp_root``
    (removed on exit). Extensions are never fetched or loaded: the data steps run offline as in AWS. DuckDB is
    imported here, not with the module: only the data bundle has it (the train bundle's monitor imports the drift
    functions beside the statistics, and has no room for DuckDB's 63 MB)."""
    import duckdb

    spill = tempfile.mkdtemp(prefix="duckdb-", dir=limits.temp_root)
    con = duckdb.connect(
        config={
            "memory_limit": f"{limits.memory_mb}MB",
            "threads": limits.threads,
            "temp_directory": spill,
            "preserve_insertion_order": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )
    try:
        con.execute("SET enable_progress_bar = false")  # a long query would draw its bar in the function's log
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def quote(name: str) -> str:
    """``name`` as a SQL identifier (any column name a table may carry)."""
    return '"' + name.replace('"', '""') + '"'


def parquet_source(paths: list[str]) -> str:
    """The ``FROM`` clause reading ``paths`` as one table."""
    return "read_parquet([" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "])"
