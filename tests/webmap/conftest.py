"""A real geoapi server (uvicorn in a thread, SpatiaLite with the small data of seed.py) and a
real Chromium (Debian's, through Playwright) for the web-map tests. Screenshots go to
test-artifacts/webmap/."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from geoapi.api.app import create_app
from geoapi.auth import create_key
from geoapi.settings import Settings
from geoapi.storage import Store
from tests.webmap.seed import seed

CHROMIUM = "/usr/bin/chromium"
# WebGL through SwiftShader (no GPU on the test machines); no background traffic to the internet.
CHROMIUM_ARGS = ["--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--disable-gpu-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "webmap"


@dataclass
class LiveServer:
    url: str
    store: Store
    editor_key: str
    counts: dict[str, int] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("webmap")
    settings = Settings(database_url=f"sqlite:///{tmp / 'geoapi.sqlite'}", data_dir=tmp)
    store = Store.open(settings)
    store.upgrade()
    counts = seed(store)
    key = create_key(store.engine, "editor", "webmap-test-editor")
    port = _free_port()
    config = uvicorn.Config(create_app(settings, store), host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", store, key, counts)
    server.should_exit = True
    thread.join(timeout=10)
    store.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class MapPage:
    """One open /map page and what its console said."""

    page: object
    server: LiveServer
    errors: list[str] = field(default_factory=list)

    def idle(self, timeout_ms: int = 30_000) -> None:
        """Wait until the map has rendered everything it asked for."""
        self.page.evaluate("""(ms) => new Promise((resolve) => {
            map.once('idle', resolve); setTimeout(resolve, ms); map.triggerRepaint(); })""", timeout_ms)
        self._loaded(timeout_ms)

    def jump(self, lon: float, lat: float, zoom: float, timeout_ms: int = 30_000) -> None:
        self.page.evaluate("""([lon, lat, zoom, ms]) => new Promise((resolve) => {
            map.once('idle', resolve); setTimeout(resolve, ms); map.jumpTo({center: [lon, lat], zoom}); })""",
                           [lon, lat, zoom, timeout_ms])
        self._loaded(timeout_ms)

    def _loaded(self, timeout_ms: int) -> None:
        # The 'idle' waits above give up after timeout_ms (an event the page never fires must not
        # hang the suite: it did once, in CI); this is the condition the tests rely on.
        self.page.wait_for_function("() => map.loaded() && map.areTilesLoaded()", timeout=timeout_ms)

    def tab(self, name: str) -> None:
        self.page.click(f"#tabs button[data-tab={name}]")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture(scope="module")
def map_page(browser, live_server) -> Iterator[MapPage]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(30_000)
    mp = MapPage(page, live_server)
    page.on("console", lambda m: m.type == "error" and mp.errors.append(m.text))
    page.on("pageerror", lambda e: mp.errors.append(f"page error: {e}"))
    page.on("response", lambda r: r.status >= 400 and mp.errors.append(f"HTTP {r.status} {r.url}"))
    page.goto(f"{live_server.url}/map")
    page.wait_for_function("window.geoapiReady === true", timeout=60_000)
    mp.idle(60_000)
    yield mp
    context.close()

