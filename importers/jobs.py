"""Imports running in the background of a server process (``POST /imports``).

One worker thread per process: imports are heavy and the registry database takes one writer
at a time anyway, so a second thread would only wait. The in-memory job carries what the batch
row cannot (percent done while running); the ``import_batches`` row stays the durable record.
"""

from __future__ import annotations

import logging
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importers.batches import create_batch, run_recorded_import
from importers.engine import ImportOptions
from importers.report import ImportReport

log = logging.getLogger("geoapi.importers")


@dataclass
class Job:
    id: str
    state: str = "queued"           # queued | running | then the batch's final state
    done: int = 0
    total: int | None = None
    report: ImportReport | None = None

    @property
    def percent(self) -> float | None:
        if self.state in ("done", "dry_run", "failed", "rolled_back"):
            return 100.0
        if self.state == "queued":
            return 0.0
        if not self.total:
            return None
        # Rows are checked first and written at the end: stay below 100 until the commit.
        return min(99.0, round(100.0 * self.done / self.total, 1))


class ImportJobs:
    """Queue imports onto one worker thread and remember their progress."""

    def __init__(self, store: Any):
        self.store = store
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geoapi-import")

    def submit(self, upload: Path, options: ImportOptions, *, file_name: str, cleanup: Path | None = None) -> Job:
        """Record the batch as queued and schedule it; ``cleanup`` (the upload folder) is removed after."""
        batch_id = create_batch(self.store, options, file_name=file_name, file_size=_size(upload))
        job = Job(batch_id)
        with self._lock:
            self._jobs[batch_id] = job
        self._pool.submit(self._run, job, upload, options, file_name, cleanup)
        return job

    def get(self, batch_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(batch_id)

    def shutdown(self) -> None:
        """Let the running import finish (its transaction commits or rolls back whole); drop the queue."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, job: Job, upload: Path, options: ImportOptions, file_name: str, cleanup: Path | None) -> None:
        def progress(done: int, total: int | None) -> None:
            job.done, job.total = done, total

        job.state = "running"
        try:
            job.report = run_recorded_import(self.store, upload, options, progress=progress,
                                             file_name=file_name, created=True)
            job.state = job.report.state
        except Exception as exc:   # recorded on the batch row by run_recorded_import
            job.state = "failed"
            if getattr(exc, "status", 500) >= 500:
                log.exception("import %s failed", job.id)
        finally:
            if cleanup is not None:
                shutil.rmtree(cleanup, ignore_errors=True)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    except OSError:
        return None
