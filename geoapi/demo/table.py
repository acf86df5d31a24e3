"""A column store that reads like a list of (properties, geometry) rows.

One million manholes as a million dicts cost ~1.5 GB and seconds to build; the generator keeps
columns (numpy arrays) and a shapely geometry array, and makes each row's dict only when it is
read. Loaders that can take columns use ``columns`` / ``geometries`` directly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np
from shapely.geometry.base import BaseGeometry


def _as_column(values: Any, n: int) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == object and values.shape == (n,):
        return values
    arr = np.empty(n, dtype=object)
    if isinstance(values, np.ndarray) or isinstance(values, list | tuple):
        arr[:] = values.tolist() if isinstance(values, np.ndarray) else list(values)
    else:  # a scalar for every row
        arr[:] = [values] * n
    return arr


class FeatureTable(Sequence[tuple[dict[str, Any], BaseGeometry]]):
    """Rows of (properties, geometry); a property whose value is None is left out of the dict."""

    def __init__(self, columns: Mapping[str, Any], geometries: np.ndarray | Sequence[BaseGeometry]):
        geoms = np.empty(len(geometries), dtype=object)
        geoms[:] = list(geometries)
        self.geometries = geoms
        n = len(geoms)
        # Python values (str, int, float, bool, date, list), never numpy scalars: loaders and
        # validators see what a JSON body or a DBF reader would give them.
        self.columns: dict[str, np.ndarray] = {k: _as_column(v, n) for k, v in columns.items()}

    def __len__(self) -> int:
        return len(self.geometries)

    def _row(self, i: int) -> tuple[dict[str, Any], BaseGeometry]:
        props = {k: col[i] for k, col in self.columns.items() if col[i] is not None}
        return props, self.geometries[i]

    @overload
    def __getitem__(self, i: int) -> tuple[dict[str, Any], BaseGeometry]: ...
    @overload
    def __getitem__(self, i: slice) -> list[tuple[dict[str, Any], BaseGeometry]]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self._row(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._row(i)

    def __iter__(self) -> Iterator[tuple[dict[str, Any], BaseGeometry]]:
        names = list(self.columns)
        cols = [self.columns[k] for k in names]
        for i, geom in enumerate(self.geometries):
            yield {k: c[i] for k, c in zip(names, cols, strict=True) if c[i] is not None}, geom

    def column(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __repr__(self) -> str:
        return f"FeatureTable({len(self)} rows, columns={list(self.columns)})"
