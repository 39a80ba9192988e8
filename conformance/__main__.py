"""`python -m conformance --base-url URL`: run every case, one line each, then `N passed, N failed`."""
from __future__ import annotations

import argparse
import datetime
import sys
import time

import httpx

from conformance import report, runner
from conformance.cases import fuzz
from conformance.spec import ORACLE, load, locate
from conformance.target import Target


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hearth-conformance", description="Check an OpenAI-compatible server against the contract.")
    p.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:1234/v1")
    p.add_argument("--api-key", default="conformance", help="sent as a bearer token (default: a dummy key)")
    p.add_argument("--model", help="model id to send (default: the first id GET /models lists)")
    p.add_argument("--only", help="comma-separated case-name globs or substrings, e.g. 'chat.*,errors'")
    p.add_argument("--report", help="write a report card to FILE.md or FILE.json")
    p.add_argument("--spec", help="OpenAPI document to validate against (default: the one shipped with the suite)")
    p.add_argument("--fuzz-examples", type=int, default=fuzz.SETTINGS["examples"], help="schemathesis examples per route and mode")
    p.add_argument("--label", help="what the server under test is, for the report (e.g. 'hearth 0.1.0')")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fuzz.SETTINGS["examples"] = args.fuzz_examples
    cases = runner.select(runner.REGISTRY, args.only)
    if args.list:
        for item in cases:
            print(f"{item.name}  ({item.route}; {item.feature})")
        return 0
    if not cases:
        print(f"no case matches --only {args.only!r}", file=sys.stderr)
        return 2
    try:
        spec, oracle = load(locate(args.spec)), load(ORACLE)
    except (OSError, ValueError) as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    target = Target(args.base_url, spec, api_key=args.api_key, model=args.model, oracle=oracle)
    try:
        target.http.get("/models", timeout=10)
    except httpx.TransportError as exc:
        print(f"conformance: cannot reach {args.base_url}: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        results = runner.run(target, cases, lambda r: print(report.line(r), flush=True))
    finally:
        target.close()
    seconds = round(time.monotonic() - started, 1)
    if args.report:
        meta = {"server": args.label, "base_url": args.base_url, "model": target._model, "spec": spec.describe(), "oracle": oracle.describe(), "seconds": seconds,
                "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
        report.write(args.report, results, meta)
    print(f"({seconds} s)")
    print(report.summary(results))
    return 1 if any(r.status == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
