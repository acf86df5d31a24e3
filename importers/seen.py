"""The codes seen so far in a delivery, for the in-file duplicate check, in compact form.

A dict of a million codes and their row numbers takes ~150 MB of Python objects. Here a code
is a 16-byte key — its UTF-8 bytes when they fit (the 16-digit 部件标识码, most asset numbers),
else 0xFF and 15 bytes of its BLAKE2b digest (0xFF never starts UTF-8 text, so the two kinds
cannot meet) — kept with its row number in sorted numpy runs that are merged as they grow, as
in a log-structured merge: 24 bytes a code, and a lookup is one binary search per run
(at most log2(rows / batch) runs).
"""

from __future__ import annotations

import hashlib

import numpy as np

_KEY = np.dtype("S16")


def code_key(code: str) -> bytes:
    raw = code.encode()
    if len(raw) <= 16 and not raw.endswith(b"\x00"):
        return raw
    return b"\xff" + hashlib.blake2b(raw, digest_size=15).digest()


class SeenCodes:
    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []   # (sorted keys, first row numbers)

    def __len__(self) -> int:
        return sum(len(k) for k, _ in self._runs)

    def check(self, codes: list[str], rows: list[int]) -> list[int | None]:
        """For each code, the row it was first seen in (an earlier call, or earlier in ``codes``),
        or None when it is new; the new ones are remembered with their ``rows``."""
        out: list[int | None] = [None] * len(codes)
        first_here: dict[bytes, int] = {}
        fresh: list[int] = []
        keys = [code_key(c) for c in codes]
        for i, k in enumerate(keys):
            j = first_here.get(k)
            if j is None:
                first_here[k] = i
                fresh.append(i)
            else:
                out[i] = rows[j]
        if not fresh:
            return out
        q = np.array([keys[i] for i in fresh], dtype=_KEY)
        new = np.ones(len(fresh), dtype=bool)
        for run_keys, run_rows in self._runs:
            at = np.searchsorted(run_keys, q)
            hit = at < len(run_keys)
            hit[hit] = run_keys[at[hit]] == q[hit]
            for i in np.flatnonzero(hit).tolist():
                out[fresh[i]] = int(run_rows[at[i]])
            new &= ~hit
        keep = np.flatnonzero(new)
        if keep.size:
            order = np.argsort(q[keep], kind="stable")
            self._runs.append((q[keep][order], np.array([rows[fresh[i]] for i in keep.tolist()], dtype=np.int64)[order]))
            self._merge()
        return out

    def _merge(self) -> None:
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (k1, r1), (k2, r2) = self._runs.pop(), self._runs.pop()
            keys, rows = np.concatenate([k2, k1]), np.concatenate([r2, r1])
            order = np.argsort(keys, kind="stable")
            self._runs.append((keys[order], rows[order]))
