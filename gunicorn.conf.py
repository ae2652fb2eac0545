"""gunicorn's settings for the web process (Procfile: gunicorn -c gunicorn.conf.py wsgi:app).

Every answer, gunicorn's own included, is a problem document. The app limits request heads itself
(marketplace.http.guards: a URL past 4 KB is a 414, a header past 8 KB or headers past 32 KB a
431), so gunicorn's limits are set above those and a request a client can reasonably send reaches
the app. What is past even these (a request line over gunicorn's ceiling of 8190 bytes, a header
over 32 KB, more than 100 headers, a request line that is not HTTP) gunicorn answers itself; its
error page is written as application/problem+json instead of HTML (`_write_problem` below).
"""

import json
import os

from gunicorn import util

from marketplace.http.problems import problem_body

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
accesslog = "-"

limit_request_line = 8190  # gunicorn's maximum (0 would mean unlimited, buffered in memory)
limit_request_field_size = 32768
limit_request_fields = 100

def _write_problem(sock, status_int, reason, mesg):
    """gunicorn.util.write_error's replacement: the same status, as the app's problem documents are."""
    body = json.dumps(problem_body(status_int, mesg or None)).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


# Workers call util.write_error by its module attribute when a request cannot be parsed.
util.write_error = _write_problem
