"""Why an import was refused. Each maps to an HTTP status and a stable code (geoapi.errors)."""

from __future__ import annotations

from geoapi.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    ValidationFailedError,
)


class ImportRefusedError(ValidationFailedError):
    """The delivery cannot be imported as given (no CRS, unsafe datum, unreadable file …)."""

    code = "import_refused"


class UnsafeArchiveError(BadRequestError):
    """A zip entry would escape the extraction directory (absolute path, ``..``, symlink)."""

    code = "unsafe_archive"


class ArchiveTooLargeError(PayloadTooLargeError):
    """The archive decompresses to more bytes or entries than allowed (zip bomb guard)."""

    code = "archive_too_large"


class BatchNotFoundError(NotFoundError):
    """No import batch with that id (code ``not_found``, as docs/errors.md lists)."""


class RollbackConflictError(ConflictError):
    """The batch cannot be undone: not finished, already undone, or later writes changed its rows."""
