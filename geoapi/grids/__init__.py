"""路长制 road segments, their corridors (路段责任区), unit grids (单元网格) and asset assignment.

Geometry work happens in a local transverse-Mercator frame (metres, ``metric.py``); results go
back to EPSG:4490 for the Store. See docs/grids.md for the rules.
"""
