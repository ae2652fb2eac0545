"""The pages' HTTP side: served at /app/ and /console/ with headers that forbid inline script and framing."""

from __future__ import annotations

import gzip
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "marketplace" / "web" / "static"


def test_pages_are_served_with_a_csp_that_forbids_inline_script_and_framing(client):
    for path in ("/app/", "/console/"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        csp = response.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["object-src"] == "'none'"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        html = response.get_data(as_text=True)
        assert "<script>" not in html and " on" + "click=" not in html  # no inline script or handler
        assert 'type="module" src="/web/static/' in html


def test_static_files_carry_the_same_headers_and_pages_redirect_to_their_slash(client):
    script = client.get("/web/static/app.js")
    assert script.status_code == 200
    assert script.mimetype in ("text/javascript", "application/javascript")
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/app").headers["Location"].endswith("/app/")
    assert client.get("/console").status_code == 308


def test_javascript_stays_small_and_never_writes_html():
    sources = {p.name: p.read_text() for p in STATIC.glob("*.js")}
    assert {"app.js", "console.js", "common.js"} <= set(sources)
    gzipped = sum(len(gzip.compress(text.encode(), 9)) for text in sources.values())
    assert gzipped < 100 * 1024
    for name, text in sources.items():
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{name} uses {sink}"
