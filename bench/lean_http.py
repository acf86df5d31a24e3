"""A lean keep-alive HTTP client for latency benchmarks.

httpx costs about 1–2 ms of client CPU per request on this machine (measured against
http.client on the same server, same run: bench/README.md "Tiles"), which a latency benchmark
would count as server time; the SQL floors are timed through psycopg, which costs almost
nothing. Every server (geoapi, tipg) is timed through this same client.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlencode, urlsplit


class LeanClient:
    """GET over one persistent HTTP/1.1 connection (reopened if the server closed it)."""

    def __init__(self, base_url: str, timeout: float = 60):
        u = urlsplit(base_url)
        self.host, self.port, self.timeout = u.hostname or "127.0.0.1", u.port or 80, timeout
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str, params: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        url = f"{path}?{urlencode(params)}" if params else path
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request("GET", url, headers=headers or {})
                r = self._conn.getresponse()
                return r.status, r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> LeanClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
