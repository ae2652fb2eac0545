"""Serves the worker client and the admin console, their static files, and their security headers.

The pages carry no data and no secrets: everything they show comes from the public API, called
by their own JavaScript with a bearer token kept in sessionStorage (never in a URL).
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request

bp = Blueprint(
    "web", __name__, template_folder="templates", static_folder="static", static_url_path="/web/static",
)

# Scripts only from our own origin (no inline script, no eval); screenshots are shown from blob:
# URLs made from authenticated fetches; nothing may frame the pages (clickjacking).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


@bp.get("/")
def home():
    """A newcomer's first request: where the worker app, the console and the API docs are."""
    return render_template("web/home.html")


@bp.get("/app")
@bp.get("/console")
def without_slash():
    return redirect(request.path + "/", code=308)


@bp.get("/app/")
def worker_client():
    return render_template("web/app.html")


@bp.get("/console/")
def admin_console():
    return render_template("web/console.html")


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "geolocation=(), microphone=(), camera=()"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response
