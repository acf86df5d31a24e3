"""API keys and roles (issue 2 §6)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from geoapi.api.app import create_app

BODY = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [113.24, 35.21]},
        "properties": {"well_use": "污水"}}


def test_writes_need_a_key(client):
    r = client.post("/collections/manholes/items", json=BODY)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_bad_key_is_401(client):
    for header in ("Bearer gk_deadbeef_nope", "Bearer nonsense", "Basic abc"):
        r = client.post("/collections/manholes/items", json=BODY, headers={"Authorization": header})
        assert r.status_code == 401, header


def test_weak_role_is_403(client, keys):
    for role in ("viewer", "dispatcher"):
        r = client.post("/collections/manholes/items", json=BODY, headers=keys[role])
        assert r.status_code == 403 and "editor" in r.json()["detail"]
    assert client.post("/collections/manholes/items", json=BODY, headers=keys["editor"]).status_code == 201


def test_reads_open_by_default_and_closable(settings, store, keys):
    assert TestClient(create_app(settings, store)).get("/collections/manholes/items").status_code == 200
    closed = settings.model_copy(update={"reads_open": False})
    with TestClient(create_app(closed, store)) as c:
        assert c.get("/collections/manholes/items").status_code == 401
        assert c.get("/collections/manholes/items", headers=keys["viewer"]).status_code == 200
        assert c.get("/healthz").status_code == 200


def test_revoked_key_stops_working(client, store):
    from geoapi.auth import create_key, revoke_key

    key = create_key(store.engine, "editor", "temp")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post("/collections/manholes/items", json=BODY, headers=headers).status_code == 201
    assert revoke_key(store.engine, key.split("_")[1])
    assert client.post("/collections/manholes/items", json=BODY, headers=headers).status_code == 401


def test_keys_are_stored_hashed(store):
    import sqlalchemy as sa

    from geoapi.auth import create_key

    key = create_key(store.engine, "viewer")
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT key_hash FROM api_keys")).scalars().all()
    assert key.split("_", 2)[2] not in " ".join(stored)


def test_whoami_names_the_key_holder(client, keys, store):
    from geoapi.auth import create_key

    assert client.get("/auth/whoami").json() == {"role": "viewer", "name": "anonymous"}
    assert client.get("/auth/whoami", headers=keys["dispatcher"]).json() == {"role": "dispatcher",
                                                                             "name": "test-dispatcher"}
    key = create_key(store.engine, "editor", "张三")
    assert client.get("/auth/whoami", headers={"Authorization": f"Bearer {key}"}).json() == {"role": "editor",
                                                                                             "name": "张三"}


def test_whoami_refuses_a_bad_key(client):
    for header in ("Bearer gk_deadbeef_nope", "Basic abc"):
        r = client.get("/auth/whoami", headers={"Authorization": header})
        assert r.status_code == 401 and r.json()["code"], header
