"""路长制 and unit-grid endpoints: summaries and the printable 公示牌."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path
from fastapi.responses import HTMLResponse

from geoapi.api.deps import ReaderDep, SettingsDep, StoreDep
from geoapi.grids.assign import install
from geoapi.grids.card import render_card
from geoapi.grids.summary import grid_summary, road_segment, segment_card, segment_summary

router = APIRouter(tags=["路长制与单元网格"])

SegmentCode = Annotated[str, Path(min_length=1, max_length=40, description="路段编号, e.g. JZ-005-03")]
GridCode = Annotated[str, Path(min_length=1, max_length=20, description="单元网格标识码 (15 digits; 14 legacy)")]


def startup(app: FastAPI) -> None:
    install(app.state.store)  # grid_code / road_segment on every write


@router.get("/road_segments/{code}/summary", summary="路段统计：部件数、告警、长度、路长")
def road_segment_summary(code: SegmentCode, store: StoreDep, _: ReaderDep) -> dict[str, Any]:
    return segment_summary(store, code)


@router.get("/road_segments/{code}/card", response_class=HTMLResponse, summary="路长制公示牌（A4 打印）")
def road_segment_card(code: SegmentCode, store: StoreDep, settings: SettingsDep, _: ReaderDep) -> HTMLResponse:
    card = segment_card(road_segment(store, code).props)
    return HTMLResponse(render_card(card, city=settings.city_name))


@router.get("/unit_grids/{code}/summary", summary="单元网格统计：部件数、告警、面积、网格长")
def unit_grid_summary(code: GridCode, store: StoreDep, _: ReaderDep) -> dict[str, Any]:
    return grid_summary(store, code)
