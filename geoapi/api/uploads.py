"""Multipart uploads streamed straight to disk, with the size limit enforced while reading.

Starlette's ``UploadFile`` parses the whole body (into a temp file) before the handler runs,
so it can neither stop a 5 GB upload at the limit nor put the file where imports read it.
Here the body is parsed chunk by chunk (python-multipart): the file part goes to
``dest`` as it arrives and the request is refused with 413 the moment it passes ``max_bytes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fastapi import Request
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from geoapi.errors import BadRequestError, PayloadTooLargeError

_FIELD_LIMIT = 1 << 20          # form fields (mapping JSON …) are small
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]')


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    file: Path | None = None        # where the file part was written
    file_name: str | None = None    # the client's name for it
    size: int = 0


def safe_name(name: str, default: str = "upload") -> str:
    """The last path component of a client file name, without characters a filesystem dislikes."""
    base = _UNSAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    return base[:200] or default


async def receive_upload(request: Request, dest: Path, *, file_field: str, max_bytes: int) -> Upload:
    """Parse a multipart/form-data body: one file part written under ``dest``, the rest as text."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise BadRequestError("send the delivery as multipart/form-data with a 'file' part")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + _FIELD_LIMIT:
        raise PayloadTooLargeError(f"the upload is {int(length):,} bytes; the limit is {max_bytes:,} "
                                   "(GEOAPI_UPLOAD_MAX_BYTES)")
    up = Upload()
    state: dict = {"headers": {}, "name": None, "filename": None, "out": None, "buf": bytearray(), "key": b""}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["key"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        key = state["key"].decode("latin-1").lower()
        state["headers"][key] = state["headers"].get(key, b"") + data[start:end]

    def on_header_end() -> None:
        state["key"] = b""

    def on_headers_finished() -> None:
        disp, opts = parse_options_header(state["headers"].get("content-disposition", b""))
        state["name"] = opts.get(b"name", b"").decode("utf-8", "replace")
        filename = opts.get(b"filename")
        if filename is not None:
            if state["name"] != file_field or up.file is not None:
                raise BadRequestError(f"send one file, in the form field {file_field!r}")
            up.file_name = filename.decode("utf-8", "replace")
            dest.mkdir(parents=True, exist_ok=True)
            up.file = dest / safe_name(up.file_name)
            state["out"] = open(up.file, "wb")  # noqa: SIM115 - closed in on_part_end / finally

    def on_part_data(data: bytes, start: int, end: int) -> None:
        out: IO[bytes] | None = state["out"]
        if out is not None:
            up.size += end - start
            if up.size > max_bytes:
                raise PayloadTooLargeError(f"the upload passed the limit of {max_bytes:,} bytes "
                                           "(GEOAPI_UPLOAD_MAX_BYTES)")
            out.write(data[start:end])
        else:
            state["buf"] += data[start:end]
            if len(state["buf"]) > _FIELD_LIMIT:
                raise PayloadTooLargeError(f"form field {state['name']!r} is larger than {_FIELD_LIMIT:,} bytes")

    def on_part_end() -> None:
        if state["out"] is not None:
            state["out"].close()
            state["out"] = None
        elif state["name"]:
            up.fields[state["name"]] = bytes(state["buf"]).decode("utf-8", "replace")
        state.update(headers={}, name=None, buf=bytearray())

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (PayloadTooLargeError, BadRequestError):
        raise
    except Exception as exc:   # python-multipart's MultipartParseError and friends
        raise BadRequestError(f"the multipart body could not be read: {exc}") from exc
    finally:
        if state["out"] is not None:
            state["out"].close()
    if up.file is None:
        raise BadRequestError(f"no file in the form field {file_field!r}")
    return up
