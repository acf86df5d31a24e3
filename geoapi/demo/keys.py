"""The demo's editor key: created once, kept in <data_dir>/demo-editor.key, reused while valid."""

from __future__ import annotations

from pathlib import Path

from geoapi.auth import authenticate, create_key
from geoapi.errors import UnauthorizedError
from geoapi.storage import Store


def demo_key(store: Store, data_dir: Path) -> str:
    path = Path(data_dir) / "demo-editor.key"
    if path.exists():
        key = path.read_text().strip()
        try:
            authenticate(store.engine, key)
            return key
        except UnauthorizedError:
            pass  # a different database: make a new one
    key = create_key(store.engine, "editor", "演示编辑")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key
