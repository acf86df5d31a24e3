"""Shared fixtures: a fresh registry database per test on SpatiaLite and on PostGIS.

PostGIS runs when GEOAPI_TEST_PG_URL is set (``make test`` sets it; then an unreachable server
fails the run instead of skipping) or when the local server at 127.0.0.1:5432 answers.
Each test gets its own database, cloned from an upgraded template, so tests never see each
other's rows and a template clone costs a fraction of a schema build.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from geoapi.api.app import create_app
from geoapi.auth import create_key
from geoapi.settings import Settings
from geoapi.storage import Store

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Tables, columns and triggers of the public schema: a database whose shape differs from the
# template's was changed by its test and is not reused.
SCHEMA_SHAPE = """SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
    SELECT table_name || '.' || column_name AS x FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL SELECT tgname FROM pg_trigger WHERE NOT tgisinternal) s"""
RUN_ID = uuid.uuid4().hex[:8]


def _pg_admin_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"


def _pg_available(url: str) -> bool:
    try:
        with psycopg.connect(_pg_admin_dsn(url), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_base_url() -> str | None:
    url = os.environ.get("GEOAPI_TEST_PG_URL")
    if url:
        if not _pg_available(url):
            pytest.fail(f"GEOAPI_TEST_PG_URL={url} is set but PostgreSQL does not answer")
        return url
    return DEFAULT_PG if _pg_available(DEFAULT_PG) else None


class DatabaseFactory:
    """Creates upgraded databases quickly by cloning a template (a file, or CREATE DATABASE … TEMPLATE)."""

    def __init__(self, backend: str, tmp: Path, pg_base_url: str | None):
        self.backend = backend
        self.tmp = tmp
        self.pg_base_url = pg_base_url
        self.created: list[str] = []
        self.pool: list[str] = []
        self.template: str | None = None
        self.template_shape: str | None = None

    def _admin(self):
        return psycopg.connect(_pg_admin_dsn(self.pg_base_url), autocommit=True)

    def _pg_url(self, name: str) -> str:
        return self.pg_base_url.rsplit("/", 1)[0] + "/" + name

    def _build_template(self) -> None:
        if self.backend == "spatialite":
            path = self.tmp / "template.sqlite"
            store = Store.open(Settings(database_url=f"sqlite:///{path}", data_dir=self.tmp))
            store.upgrade()
            store.close()
            self.template = str(path)
        else:
            name = f"geoapi_tpl_{RUN_ID}"
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            store = Store.open(Settings(database_url=self._pg_url(name), data_dir=self.tmp))
            store.upgrade()
            store.close()
            self.template = name

    def new_url(self) -> str:
        if self.template is None:
            self._build_template()
        if self.backend == "spatialite":
            path = self.tmp / f"db-{uuid.uuid4().hex[:8]}.sqlite"
            shutil.copyfile(self.template, path)
            return f"sqlite:///{path}"
        if self.pool:
            return self._pg_url(self.pool.pop())
        name = f"geoapi_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return self._pg_url(name)

    def release(self, url: str) -> None:
        """Empty a used PostGIS database and pool it for the next test.

        Dropping a database forces a checkpoint, which takes seconds on a busy server; emptying
        the tables takes milliseconds. A test that changed the schema gets its database dropped.
        """
        if self.backend != "postgis":
            return
        name = url.rsplit("/", 1)[1]
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with self._admin() as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        with psycopg.connect(dsn, autocommit=True) as conn:
            shape = conn.execute(SCHEMA_SHAPE).fetchone()[0]
            if self.template_shape is None:
                with psycopg.connect(self._pg_url(self.template).replace("postgresql+psycopg://", "postgresql://")) as t:
                    self.template_shape = t.execute(SCHEMA_SHAPE).fetchone()[0]
            if shape != self.template_shape:
                dirty = True
            else:
                tables = [r[0] for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename NOT IN ('spatial_ref_sys', 'alembic_version')")]
                conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
                dirty = False
        if not dirty:
            self.pool.append(name)

    def drop_all(self) -> None:
        if self.backend != "postgis" or not self.created:
            return
        with self._admin() as conn:
            for name in reversed(self.created):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_factories: dict[str, DatabaseFactory] = {}


@pytest.fixture(scope="session")
def db_factories(tmp_path_factory, pg_base_url) -> Iterator[dict[str, DatabaseFactory]]:
    base = tmp_path_factory.mktemp("dbs")
    _factories["spatialite"] = DatabaseFactory("spatialite", base, None)
    if pg_base_url:
        _factories["postgis"] = DatabaseFactory("postgis", base, pg_base_url)
    yield _factories
    for f in _factories.values():
        f.drop_all()


@pytest.fixture(params=["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def backend(request, db_factories) -> str:
    if request.param not in db_factories:
        pytest.skip("PostgreSQL with PostGIS is not reachable (set GEOAPI_TEST_PG_URL to require it)")
    return request.param


@pytest.fixture
def settings(backend, db_factories, tmp_path) -> Iterator[Settings]:
    url = db_factories[backend].new_url()
    yield Settings(database_url=url, data_dir=tmp_path)
    db_factories[backend].release(url)


@pytest.fixture
def store(settings) -> Iterator[Store]:
    s = Store.open(settings)
    yield s
    s.close()


@pytest.fixture
def pg_small_copies(store, backend, monkeypatch) -> Store:
    """The PostGIS store with bulk writes in 7-row chunks joined into COPY statements of >= 10
    rows, so a few dozen rows take the initial-load path (geoapi.storage.pgload)."""
    if backend != "postgis":
        pytest.skip("PostGIS initial load")
    from geoapi.storage import writer
    monkeypatch.setattr(writer, "CHUNK", 7)
    monkeypatch.setattr(writer, "COPY_ROWS", 10)
    return store


@pytest.fixture
def app(settings, store):
    return create_app(settings, store)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def keys(store) -> dict[str, str]:
    """One API key per role, as Authorization headers."""
    return {role: {"Authorization": f"Bearer {create_key(store.engine, role, f'test-{role}')}"}
            for role in ("viewer", "dispatcher", "editor", "admin")}
