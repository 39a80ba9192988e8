"""Hearth on Ray Serve (the optional extra `hearth[ray]`): replicas of the whole Hearth app, each owning its
models and prefix cache, behind one ingress that routes requests by prompt prefix.

What runs where (docs/cluster.md has the picture):
- `ingress.py`   the HTTP deployment: reads the request, derives its prefix blocks (`prefix.py`), and
                 forwards it through a deployment handle; streams the replica's ASGI messages back.
- `replica.py`   `HearthReplica`: builds Hearth's own app in the replica (`app.py`, a builder function, never
                 pickled) and runs each request through it in process; reports its engine counters.
- `router.py`    Ray Serve `RequestRouter`s: prefix affinity (`policy.py`, pure Python) and round-robin.
- `builder.py`   the Serve application from a `ClusterConfig`; `__main__.py` is `scripts/cluster`.

Only `router.py`, `replica.py`, `ingress.py` and `builder.py` import Ray; the rest is importable without it.
"""
from __future__ import annotations

import importlib.util


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None and importlib.util.find_spec("ray.serve") is not None
