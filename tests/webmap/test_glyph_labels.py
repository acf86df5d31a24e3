"""Digit and Latin labels draw in a real Chromium from the served SDF glyphs (tiles/fonts/*.pbf):
a symbol whose characters have glyphs is placed, one whose range is empty is not."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADD_LABELS = """([lon, lat]) => new Promise((resolve) => {
    const font = map.getStyle().layers.find(l => l.type === 'symbol' && l.layout && l.layout['text-font']);
    map.addSource('glyph-test', {type: 'geojson', data: {type: 'FeatureCollection', features: [
        {type: 'Feature', properties: {label: '0123456789 Km'}, geometry: {type: 'Point', coordinates: [lon, lat]}},
        // Cyrillic: range 1024-1279 has no file, so this label has no glyph and cannot be placed.
        {type: 'Feature', properties: {label: 'Жж'}, geometry: {type: 'Point', coordinates: [lon, lat - 0.002]}},
    ]}});
    map.addLayer({id: 'glyph-test', type: 'symbol', source: 'glyph-test', layout: {
        'text-field': ['get', 'label'], 'text-font': font ? font.layout['text-font'] : ['Noto Sans Regular'],
        'text-size': 32, 'text-allow-overlap': true, 'text-ignore-placement': true},
        paint: {'text-color': '#c00000', 'text-halo-color': '#ffffff', 'text-halo-width': 2}});
    map.once('idle', resolve);
    setTimeout(resolve, 30000);   // the wait_for_function below checks what matters
})"""


def test_digit_label_is_drawn_from_served_glyphs(browser, live_server):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"HTTP {r.status} {r.url}"))
    glyph_requests: list[str] = []
    page.on("request", lambda r: "/fonts/" in r.url and glyph_requests.append(r.url))
    try:
        page.goto(f"{live_server.url}/map")
        page.wait_for_function("window.geoapiReady === true", timeout=60_000)
        center = page.evaluate("() => map.getCenter().toArray()")
        page.evaluate(ADD_LABELS, center)
        page.wait_for_function("() => map.loaded() && map.areTilesLoaded()", timeout=30_000)
        labels = page.evaluate("""() => map.queryRenderedFeatures({layers: ['glyph-test']})
            .map(f => f.properties.label)""")
        from tests.webmap.conftest import ARTIFACTS

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        box = page.locator("#map canvas").bounding_box()
        page.screenshot(path=str(ARTIFACTS / "glyph-labels.png"), clip=box)
    finally:
        context.close()
    assert any(u.endswith("/0-255.pbf") for u in glyph_requests)
    assert "0123456789 Km" in labels
    assert "Жж" not in labels  # the negative control: no glyphs, no symbol
    assert errors == []
