"""Mutation proof: does the suite catch each deliberately broken behaviour of a real server?

    python -m conformance.mutation --base-url http://127.0.0.1:1234/v1 [--matrix] [--mutants a,b] [--write]

The server at --base-url must pass the suite. A proxy (proxy.py) is put in front of it; for each mutant
(mutants.py) the cases run through the proxy, and the mutant is caught when at least one fails. First
the proxy runs unmutated: every case must pass through it, so that no catch is the proxy's own doing.

Default: each mutant against the cases listed as catching it (all of them must fail). `--matrix`:
each mutant against every case (fuzz cases excluded unless --fuzz), to learn the full catch sets.
`--write` records the score in conformance/reports/mutation.{json,md}; report cards print it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from conformance import runner
from conformance.mutants import MUTANTS, Mutant
from conformance.proxy import Proxy
from conformance.spec import ORACLE, load, locate
from conformance.target import Target

REPORTS = Path(__file__).resolve().parent / "reports"


@dataclass
class Row:
    mutant: Mutant
    ran: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the cases that caught it

    @property
    def missed(self) -> list[str]:
        """Listed catchers that did not fail."""
        return [c for c in self.mutant.catches if c in self.ran and c not in self.failed]


def run_cases(base_url: str, names: list[str], spec_path: str | None = None, model: str | None = None) -> list[runner.Result]:
    import conformance.cases  # noqa: F401  (registers every case)

    cases = [c for c in runner.REGISTRY if c.name in names]
    target = Target(base_url, load(locate(spec_path)), model=model, oracle=load(ORACLE))
    try:
        return runner.run(target, cases, lambda r: None)
    finally:
        target.close()


def case_names(include_fuzz: bool = False, include_loading: bool = False) -> list[str]:
    import conformance.cases  # noqa: F401

    return [c.name for c in runner.REGISTRY if (include_fuzz or not c.name.startswith("fuzz."))
            and (include_loading or not c.name.startswith("loading."))]


def mutate(proxy: Proxy, mutants: list[Mutant], matrix: bool, model: str | None, include_fuzz: bool = False,
           emit=lambda row: None) -> list[Row]:
    rows = []
    for mutant in mutants:
        names = case_names(include_fuzz) if matrix else list(mutant.catches)
        results = run_cases(proxy.url(mutant.name), names, model=model)
        row = Row(mutant, [r.name for r in results], [r.name for r in results if r.status == "fail"])
        emit(row)
        rows.append(row)
    return rows


def write(rows: list[Row], meta: dict) -> dict:
    caught = sum(1 for r in rows if r.failed)
    catchers = sorted({c for r in rows for c in r.failed})
    data = {**meta, "mutants": len(rows), "caught": caught,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cases_catching": len(catchers),
            "rows": [{"mutant": r.mutant.name, "breaks": r.mutant.breaks, "listed": list(r.mutant.catches),
                      "ran": r.ran, "caught_by": r.failed} for r in rows]}
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "mutation.json").write_text(json.dumps(data, indent=2) + "\n")
    out = [f"# Mutation run: {data['caught']}/{data['mutants']} mutants caught", "",
           f"- upstream: {meta.get('upstream')}", f"- mode: {meta.get('mode')}", f"- date: {data['date']}",
           f"- seconds: {meta.get('seconds')}", "",
           "| mutant | what it breaks | caught by |", "|---|---|---|"]
    for r in rows:
        out.append(f"| {r.mutant.name} | {r.mutant.breaks} | {', '.join(r.failed) or '**NOT CAUGHT**'} |")
    ran = {r.mutant.name for r in rows}
    for m in MUTANTS:
        if m.name not in ran and m.needs == "loading":
            out.append(f"| {m.name} | {m.breaks} | (needs a server still loading: tests/conformance/test_conformance_loading.py; "
                       f"listed: {', '.join(m.catches)}) |")
    (REPORTS / "mutation.md").write_text("\n".join(out) + "\n")
    return data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m conformance.mutation", description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", required=True, help="a server that passes the suite, e.g. http://127.0.0.1:1234/v1")
    p.add_argument("--mutants", help="comma-separated mutant names (default: every mutant that a ready server can show)")
    p.add_argument("--matrix", action="store_true", help="every mutant against every case, not only its listed catchers")
    p.add_argument("--fuzz", action="store_true", help="with --matrix: include the (slow) fuzz cases")
    p.add_argument("--write", action="store_true", help="record the score in conformance/reports/mutation.{json,md}")
    args = p.parse_args(argv)
    wanted = set(args.mutants.split(",")) if args.mutants else None
    mutants = [m for m in MUTANTS if (m.name in wanted if wanted else m.needs == "ready")]
    started = time.monotonic()
    proxy = Proxy(args.base_url)
    try:
        baseline = run_cases(proxy.url("none"), case_names(args.fuzz))
        broken = [f"{r.name}: {r.reason}" for r in baseline if r.status != "pass"]
        if broken:
            print("through the unmutated proxy these cases do not pass; fix that first:\n  " + "\n  ".join(broken), file=sys.stderr)
            return 2

        def emit(row: Row) -> None:
            mark = "CAUGHT" if row.failed else "MISSED"
            extra = f"  (listed but passed: {', '.join(row.missed)})" if row.missed else ""
            print(f"{mark} {row.mutant.name}: {', '.join(row.failed) or '-'}{extra}", flush=True)

        rows = mutate(proxy, mutants, args.matrix, None, args.fuzz, emit)
    finally:
        proxy.close()
    seconds = round(time.monotonic() - started, 1)
    caught = sum(1 for r in rows if r.failed)
    print(f"mutation score {caught}/{len(rows)} mutants caught ({seconds} s)")
    if args.matrix:
        silent = sorted(set(case_names(args.fuzz)) - {c for r in rows for c in r.failed})
        print(f"cases that caught no mutant: {', '.join(silent) or 'none'}")
    if args.write:
        write(rows, {"upstream": args.base_url, "mode": "matrix" if args.matrix else "listed catchers", "seconds": seconds})
    return 0 if caught == len(rows) and not any(r.missed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
