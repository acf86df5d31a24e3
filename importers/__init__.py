"""Survey deliveries into the registry: readers, encoding and CRS detection, field mapping,
row checks and the import report. ``run_import`` is the one entry point for the CLI and API."""

from importers.archive import ArchiveLimits
from importers.engine import DEFAULT_CITY_BOUNDS, ImportOptions, new_batch_id, run_import
from importers.errors import ArchiveTooLargeError, ImportRefusedError, UnsafeArchiveError
from importers.report import ImportReport, Provenance, RejectedRow

__all__ = [
    "DEFAULT_CITY_BOUNDS", "ArchiveLimits", "ArchiveTooLargeError", "ImportOptions", "ImportRefusedError",
    "ImportReport", "Provenance", "RejectedRow", "UnsafeArchiveError", "new_batch_id", "run_import",
]
