"""`hearth ls | ps | load | unload`: manage the models of a running server, in the manner of LM Studio's `lms`.

They talk to the server's LM Studio REST routes (/api/v1/models, /load, /unload) over HTTP, with the
standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = os.environ.get("HEARTH_URL", "http://127.0.0.1:1234")


class ClientError(Exception):
    pass


def add_commands(sub) -> None:
    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help)
        parser.add_argument("--url", default=DEFAULT_URL, help=f"the server (default: $HEARTH_URL or {DEFAULT_URL})")
        return parser

    ls = command("ls", "list the models on disk (the server's models dir)")
    ls.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    ps = command("ps", "list the models loaded in memory")
    ps.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    load = command("load", "load a model (by its key from `hearth ls`)")
    load.add_argument("key")
    load.add_argument("--ttl", type=int, help="unload it after this many idle seconds (default: never)")
    load.add_argument("--context-length", type=int, help="context per sequence, in tokens")
    load.add_argument("--gpu-layers", metavar="N|auto|max|off",
                      help="layers offloaded to a GPU (default: the server's --gpu-layers)")
    unload = command("unload", "unload a model instance (by its id from `hearth ps`)")
    unload.add_argument("id", nargs="?")
    unload.add_argument("--all", action="store_true", help="unload every loaded instance")


def _call(url: str, method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer hearth"})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code}"
        raise ClientError(message) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ClientError(f"no Hearth server answers at {url} ({getattr(exc, 'reason', exc)}); start one with "
                          "`scripts/serve`, or pass --url") from None


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def ls(args) -> int:
    models = _call(args.url, "GET", "/api/v1/models")
    if args.json:
        print(json.dumps(models, indent=2))
        return 0
    if not models["models"]:
        print("No models on disk. Put GGUF files in the server's models dir (publisher/model/file.gguf).")
    for kind, title in (("llm", "LLM"), ("embedding", "EMBEDDING")):
        entries = [m for m in models["models"] if m["type"] == kind]
        if entries:
            rows = [[title, "PARAMS", "ARCH", "SIZE", "CONTEXT", ""]]
            rows += [[m["key"], m.get("params_string") or "", m.get("architecture") or "", _size(m["size_bytes"]),
                      str(m["max_context_length"]), "LOADED" if m["loaded_instances"] else ""] for m in entries]
            print(_table(rows) + "\n")
    return 0


def _loaded(url: str) -> list[tuple[dict, dict]]:
    return [(m, i) for m in _call(url, "GET", "/api/v1/models")["models"] for i in m["loaded_instances"]]


def ps(args) -> int:
    loaded = _loaded(args.url)
    if args.json:
        print(json.dumps([{"identifier": i["id"], "key": m["key"], "type": m["type"], **i["config"]}
                          for m, i in loaded], indent=2))
        return 0
    if not loaded:
        print("No models are loaded. Load one with `hearth load KEY` (keys: `hearth ls`).")
        return 0
    rows = [["IDENTIFIER", "MODEL", "TYPE", "CONTEXT", "SIZE", "RUNS ON"]]
    rows += [[i["id"], m["key"], m["type"], str(i["config"]["context_length"]), _size(m["size_bytes"]),
              i["config"].get("offload", "")] for m, i in loaded]
    print(_table(rows))
    return 0


def load(args) -> int:
    body = {"model": args.key}
    if args.ttl is not None:
        body["ttl"] = args.ttl
    if args.context_length is not None:
        body["context_length"] = args.context_length
    if args.gpu_layers is not None:
        body["gpu_layers"] = int(args.gpu_layers) if args.gpu_layers.isdigit() else args.gpu_layers
    answer = _call(args.url, "POST", "/api/v1/models/load", body)
    print(f"Loaded {args.key} as '{answer['instance_id']}' in {answer['load_time_seconds']:.2f} s.")
    return 0


def unload(args) -> int:
    if args.all == (args.id is not None):
        raise ClientError("name one instance id (`hearth ps` lists them), or pass --all")
    ids = [i["id"] for _, i in _loaded(args.url)] if args.all else [args.id]
    for instance_id in ids:
        _call(args.url, "POST", "/api/v1/models/unload", {"instance_id": instance_id})
        print(f"Unloaded '{instance_id}'.")
    if not ids:
        print("No models are loaded.")
    return 0


def run(args) -> int:
    try:
        return {"ls": ls, "ps": ps, "load": load, "unload": unload}[args.command](args)
    except ClientError as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return 1
