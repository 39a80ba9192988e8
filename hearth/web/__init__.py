"""The server's face: the page at `/`, `/health`, `/metrics`, `/status` and the request log.

- `record`: the request being answered (a context variable) and its id;
- `telemetry`: what is counted (prometheus_client): the registry's hooks see every load and every token;
- `requestlog`: the ASGI middleware (X-Request-Id, one log line per request) and the log formats;
- `static/`: the page itself, plain HTML, CSS and JS (no build step, no CDN).
"""
