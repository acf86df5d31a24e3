"""Put the generated Jiaozuo demo into a Store: idempotent, one transaction, with a marker row."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import sqlalchemy as sa

from geoapi.storage import Store, schema

# Areas first: assets take their admin_code from the district they fall in.
LOAD_ORDER = ("districts", "road_segments", "unit_grids", "road_corridors", "signboards", "manholes",
              "smart_covers", "pipes", "heat_stations", "toilets", "transfer_stations", "parking_bays",
              "waterlogging_points")
ACTOR = "demo"


def marker_id(scale: int, seed: int) -> str:
    return f"demo-s{scale}-r{seed}"


def demo_loaded(store: Store, scale: int, seed: int) -> bool:
    b = schema.import_batches
    with store.read() as conn:
        row = conn.execute(sa.select(b.c.state).where(b.c.id == marker_id(scale, seed))).first()
    return row is not None and row.state == "done"


def load_demo(store: Store, *, scale: int = 20_000, seed: int = 42, force: bool = False,
              echo: Callable[[str], None] = print) -> dict[str, int]:
    """Generate and store the demo; skips when the same scale and seed are already loaded."""
    from geoapi.demo import generate

    if not force and demo_loaded(store, scale, seed):
        echo(f"demo data (scale {scale}, seed {seed}) already loaded; use --force to reload")
        return {}
    t0 = time.perf_counter()
    echo(f"generating the 焦作 demo (scale {scale}, seed {seed}) …")
    # as_of = now, so devices' last-seen times are recent and the demo's covers start online.
    data = generate(scale=scale, seed=seed, as_of=dt.datetime.now(dt.UTC))
    echo(f"  generated in {time.perf_counter() - t0:.1f} s")
    extra_builders = _extra_builders()
    counts: dict[str, int] = {}
    order = [lid for lid in LOAD_ORDER if lid in data] + [lid for lid in data if lid not in LOAD_ORDER]
    batch = marker_id(scale, seed)
    # Derived columns (grid_code, road_segment) are assigned in bulk by the grids step below,
    # once corridors exist; per-row enrichment during the base load would only repeat that work.
    enrichers, store.enrichers = store.enrichers, []
    try:
        _load_base(store, data, order, counts, batch, echo)
    finally:
        store.enrichers = enrichers
    for build in extra_builders:  # each builder writes in its own transaction, from the stored base data
        t1 = time.perf_counter()
        for step, result in build(store).items():
            echo(f"  {step}: " + ", ".join(f"{k} {v:,}" for k, v in result.items()))
        echo(f"  派生图层 built in {time.perf_counter() - t1:.1f} s")
    b = schema.import_batches
    with store.transaction(ACTOR) as w:  # marked loaded only once every step has succeeded
        w.conn.execute(b.insert().values(
            id=batch, layer="*", state="done", actor=ACTOR, created_at=dt.datetime.now(dt.UTC),
            finished_at=dt.datetime.now(dt.UTC), file_name="geoapi demo",
            options={"scale": scale, "seed": seed}, report={"counts": counts}))
    echo(f"demo loaded in {time.perf_counter() - t0:.1f} s")
    return counts


def _load_base(store: Store, data: dict, order: list[str], counts: dict[str, int], batch: str,
               echo: Callable[[str], None]) -> None:
    b = schema.import_batches
    with store.transaction(ACTOR, batch_id=batch) as w:
        w.conn.execute(b.delete().where(b.c.id.like("demo-%")))
        for layer_id in order:
            if layer_id not in store.registry:
                continue
            t1 = time.perf_counter()
            rows = data[layer_id]
            # tests/demo checks every generated row against its layer file
            n = w.write_many(layer_id, rows, mode="replace", src_file="geoapi demo", validated=True)
            counts[layer_id] = n["inserted"]
            echo(f"  {store.layer(layer_id).title:<10} {n['inserted']:>8,} 条  ({time.perf_counter() - t1:.1f} s)")


def _extra_builders() -> list:
    """Derived demo layers built by other packages from the stored base data (e.g. 路长制 corridors)."""
    builders = []
    try:
        from geoapi.grids.demo import build_demo_grids  # type: ignore[import-not-found]
    except ModuleNotFoundError:
        return builders
    builders.append(build_demo_grids)
    return builders
