"""Settings, read once from ``GEOAPI_*`` environment variables (or a .env file) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# 焦作市 with a margin: lon 112.5–113.75, lat 34.75–35.55 (CGCS2000 / EPSG:4490).
JIAOZUO_BOUNDS = (112.5, 34.75, 113.75, 35.55)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GEOAPI_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="where the SpatiaLite file and uploads live")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; unset = SpatiaLite file <data_dir>/geoapi.sqlite; "
        "postgresql://… = PostGIS",
    )
    layers_dir: Path | None = Field(default=None, description="site directory of extra layer files")
    city_name: str = "焦作市"
    city_admin_code: str = Field(default="410800", pattern=r"^\d{6}$")
    city_bounds: Annotated[tuple[float, float, float, float], NoDecode] = JIAOZUO_BOUNDS
    reads_open: bool = Field(default=True, description="false = reads need a viewer key too")
    default_limit: int = Field(default=100, ge=1)
    max_limit: int = Field(default=10_000, ge=1)
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(default=None, description="base URL printed and used behind proxies")
    redis_url: str | None = None
    tile_cache_size: int = Field(default=20_000, ge=0, description="in-process LRU entries")
    mqtt_url: str | None = None
    mqtt_topic: str = "geoapi/telemetry/#"
    mqtt_client_id: str = Field(default="geoapi-telemetry", description="fixed id: the broker keeps our session")
    telemetry_push_token: str | None = Field(default=None, description="token for POST /telemetry "
                                             "(X-Push-Token header or ?token=); a dispatcher key works too")
    ctwing_push_token: str | None = Field(default=None, description="token in the CTWing push URL (?token=)")
    onenet_token: str | None = Field(default=None, description="OneNET 数据推送 token (signature check)")
    telemetry_thresholds: Path | None = Field(default=None, description="site TOML overlaying alarm thresholds")
    telemetry_tick_s: float = Field(default=1.0, gt=0, description="debounce/offline check period")
    upload_max_bytes: int = 512 * 1024 * 1024
    tianditu_key: str | None = None
    log_level: str = "info"

    @field_validator("city_bounds", mode="before")
    @classmethod
    def _parse_bounds(cls, v: object) -> object:
        if isinstance(v, str):
            parts = [float(p) for p in v.split(",")]
            if len(parts) != 4:
                raise ValueError("city_bounds needs minlon,minlat,maxlon,maxlat")
            v = tuple(parts)
        if isinstance(v, (tuple, list)) and len(v) == 4 and not (v[0] < v[2] and v[1] < v[3]):
            raise ValueError("city_bounds must be minlon,minlat,maxlon,maxlat with min < max")
        return v

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{(self.data_dir / 'geoapi.sqlite').resolve()}"
