"""路长制 layers for the demo: corridors and 公示牌 built from the demo's stored road segments."""

from __future__ import annotations

from geoapi.grids.assign import assign_all, install
from geoapi.grids.build import all_features, validated, write_corridors
from geoapi.grids.signboards import signboard_rows


def build_demo_grids(store, *, actor: str = "demo", assign: bool = True) -> dict[str, dict[str, int]]:
    """Call after the demo's road_segments (and unit_grids) are stored; idempotent.

    Builds road_corridors, replaces the signboards (one per segment), installs the
    grid/segment enricher and, with ``assign``, fills grid_code / road_segment of every asset.
    """
    report: dict[str, dict[str, int]] = {"road_corridors": write_corridors(store, actor=actor)}
    rows = validated(store, "signboards", signboard_rows(all_features(store, "road_segments")))
    install(store)
    report["signboards"] = store.bulk_write("signboards", rows, actor=actor, mode="replace")
    if assign:
        for layer, counts in assign_all(store).items():
            report[f"assign:{layer}"] = counts
    return report
