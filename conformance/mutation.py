"""Mutation proof: does the suite catch each deliberately broken behaviour of a real server?

    python -m conformance.mutation --base-url http://127.0.0.1:1234/v1 [--matrix] [--mutants a,b] [--write]

The server at --base-url must pass the suite. A proxy (proxy.py) is put in front of it; for each mutant
(mutants.py) the cases run through the proxy, and the mutant is caught when at least one fails. First
the proxy runs unmutated: every case must pass through it, so that no catch is the proxy's own doing.

Default: each mutant against the cases listed as catching it (all of them must fail). `--matrix`:
each mutant against every case (fuzz cases excluded unless --fuzz), to learn the full catch sets. The
matrix records each case's traffic through the unmutated proxy and replays every mutant's hooks on it
offline: a mutant that changes nothing of a case's requests, responses or stream events cannot change
its verdict, so that pair counts as passed ("untouched") without a run. Only touched pairs run.
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

import copy

import httpx

from conformance import runner
from conformance.mutants import MUTANTS, Mutant
from conformance.proxy import Proxy, Recorded
from conformance.spec import ORACLE, load, locate
from conformance.target import Target

REPORTS = Path(__file__).resolve().parent / "reports"


@dataclass
class Row:
    mutant: Mutant
    ran: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the cases that caught it
    untouched: list[str] = field(default_factory=list)  # matrix: cases whose traffic the mutant leaves as it was

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


def record(proxy: Proxy, names: list[str], model: str | None = None) -> tuple[list[runner.Result], dict[str, list[Recorded]]]:
    """Run each case once through the unmutated proxy and keep its traffic (one tape per case)."""
    import conformance.cases  # noqa: F401

    cases = [c for c in runner.REGISTRY if c.name in names]
    target = Target(proxy.url("none"), load(locate(None)), model=model, oracle=load(ORACLE))
    tapes: dict[str, list[Recorded]] = {}
    results = []
    try:
        target.wait_ready()
        target.model  # noqa: B018  (looked up before taping, so no case's tape holds the lookup)
        for item in cases:
            proxy.tape = tapes[item.name] = []
            results.append(runner.run_one(target, item))
    finally:
        proxy.tape = None
        target.close()
    time.sleep(0.5)  # the last stream's events reach its tape as its generator closes
    return results, tapes


def touches(mutant: Mutant, tape: list[Recorded]) -> bool:
    """Would this mutant change anything of the recorded traffic? Its hooks replayed on copies."""
    for rec in tape:
        ex = rec.exchange()
        if mutant.on_request and (mutant.on_request(ex) is not None or ex.body_changed):
            return True
        if rec.events is None:
            if mutant.on_response:
                status, headers, body = mutant.on_response(ex, rec.status, dict(rec.response_headers), copy.deepcopy(rec.response_body))
                if (status, headers, body) != (rec.status, rec.response_headers, rec.response_body):
                    return True
        else:
            if mutant.cut_after is not None and len(rec.events) > mutant.cut_after:
                return True
            if mutant.on_event and any(mutant.on_event(ex, i, copy.deepcopy(e)) != [e] for i, e in enumerate(rec.events)):
                return True
    return False


def case_names(include_fuzz: bool = False, include_loading: bool = False) -> list[str]:
    import conformance.cases  # noqa: F401

    return [c.name for c in runner.REGISTRY if (include_fuzz or not c.name.startswith("fuzz."))
            and (include_loading or not c.name.startswith("loading."))]


def mutate(proxy: Proxy, mutants: list[Mutant], tapes: dict[str, list[Recorded]] | None, model: str | None,
           emit=lambda row: None) -> list[Row]:
    """Each mutant against its listed cases, or (with the baseline's tapes) against every taped case it touches."""
    rows = []
    for mutant in mutants:
        names = [n for n, tape in tapes.items() if touches(mutant, tape)] if tapes is not None else list(mutant.catches)
        results = run_cases(proxy.url(mutant.name), names, model=model) if names else []
        row = Row(mutant, [r.name for r in results], [r.name for r in results if r.status == "fail"],
                  [n for n in (tapes or {}) if n not in names])
        emit(row)
        rows.append(row)
    return rows


def write(rows: list[Row], meta: dict) -> dict:
    import conformance.cases  # noqa: F401

    caught = sum(1 for r in rows if r.failed)
    by_case: dict[str, list[str]] = {}
    for r in rows:
        for name in r.failed:
            by_case.setdefault(name, []).append(r.mutant.name)
    data = {**meta, "mutants": len(rows), "caught": caught,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cases_catching": len(by_case),
            "rows": [{"mutant": r.mutant.name, "breaks": r.mutant.breaks, "listed": list(r.mutant.catches),
                      "ran": r.ran, "caught_by": r.failed, "untouched": r.untouched} for r in rows]}
    REPORTS.mkdir(exist_ok=True)
    head = json.dumps({k: v for k, v in data.items() if k != "rows"}, indent=2)[:-2]  # one row a line: readable diffs
    (REPORTS / "mutation.json").write_text(head + ',\n  "rows": [\n' + ",\n".join("    " + json.dumps(r) for r in data["rows"]) + "\n  ]\n}\n")
    matrix = meta.get("mode") == "matrix"
    out = [f"# Mutation run: {data['caught']}/{data['mutants']} mutants caught", "",
           "Made by `python -m conformance.mutation --base-url URL" + (" --matrix" if matrix else "") + " --write` "
           "(conformance/mutation.py; the mutants are conformance/mutants.py).", "",
           f"- upstream: {meta.get('upstream')}", f"- mode: {meta.get('mode')}", f"- date: {data['date']}",
           f"- seconds: {meta.get('seconds')}"]
    if matrix:
        ran = sum(len(r.ran) for r in rows)
        skipped = sum(len(r.untouched) for r in rows)
        out += [f"- pairs: {ran} mutant x case pairs run; {skipped} left out because the mutant changes nothing of the "
                "case's recorded traffic (its verdict cannot change)", "",
                "Listed catchers (the cases `tests/conformance/test_mutants.py` expects to fail) are in **bold**; "
                "the others were found by the matrix."]
    out += ["", "## Mutants", "", "| mutant | what it breaks | caught by |" + (" run / untouched |" if matrix else ""),
            "|---|---|---|" + ("---|" if matrix else "")]
    for r in rows:
        names = [f"**{n}**" if n in r.mutant.catches else n for n in r.failed]
        missed = [f"~~{n}~~ (listed, passed)" for n in r.missed]
        cell = ", ".join(names + missed) or "**NOT CAUGHT**"
        out.append(f"| {r.mutant.name} | {r.mutant.breaks} | {cell} |" + (f" {len(r.ran)} / {len(r.untouched)} |" if matrix else ""))
    ran_names = {r.mutant.name for r in rows}
    for m in MUTANTS:
        if m.name not in ran_names and m.needs == "loading":
            out.append(f"| {m.name} | {m.breaks} | (needs a server still loading: tests/conformance/test_conformance_loading.py; "
                       f"listed: {', '.join(m.catches)}) |" + (" - |" if matrix else ""))
    if matrix:
        out += ["", "## Cases", "", "Which mutants each case catches. A case no mutant catches is shown failing against "
                "another real server instead (reports/README.md).", "",
                "| case | source | catches |", "|---|---|---|"]
        taped = {n for r in rows for n in r.ran + r.untouched}
        for case in runner.REGISTRY:
            if case.name in taped:
                out.append(f"| {case.name} | {case.source} | {', '.join(by_case.get(case.name, [])) or '**none**'} |")
            else:  # fuzz (without --fuzz) and loading cases: seen failing under their listed mutants in CI
                listed = [m.name for m in MUTANTS if case.name in m.catches]
                where = "test_conformance_loading.py" if case.name.startswith("loading.") else "test_mutants.py"
                out.append(f"| {case.name} | {case.source} | not in this matrix; in CI ({where}) it fails under its listed "
                           f"mutant(s): {', '.join(listed)} |")
    (REPORTS / "mutation.md").write_text("\n".join(out) + "\n")
    return data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m conformance.mutation", description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", required=True, help="a server that passes the suite, e.g. http://127.0.0.1:1234/v1")
    p.add_argument("--mutants", help="comma-separated mutant names (default: every mutant that a ready server can show)")
    p.add_argument("--matrix", action="store_true", help="every mutant against every case it touches, not only its listed catchers")
    p.add_argument("--fuzz", action="store_true", help="with --matrix: include the (slow) fuzz cases")
    p.add_argument("--write", action="store_true", help="record the score in conformance/reports/mutation.{json,md}")
    args = p.parse_args(argv)
    wanted = set(args.mutants.split(",")) if args.mutants else None
    mutants = [m for m in MUTANTS if (m.name in wanted if wanted else m.needs == "ready")]
    started = time.monotonic()
    model = httpx.get(args.base_url.rstrip("/") + "/models", timeout=30).json()["data"][0]["id"]  # one id for every run
    proxy = Proxy(args.base_url)
    try:
        baseline, tapes = record(proxy, case_names(args.fuzz), model)
        broken = [f"{r.name}: {r.reason}" for r in baseline if r.status != "pass"]
        if broken:
            print("through the unmutated proxy these cases do not pass; fix that first:\n  " + "\n  ".join(broken), file=sys.stderr)
            return 2

        def emit(row: Row) -> None:
            mark = "CAUGHT" if row.failed else "MISSED"
            extra = f"  (listed but passed: {', '.join(row.missed)})" if row.missed else ""
            print(f"{mark} {row.mutant.name}: {', '.join(row.failed) or '-'}{extra}  [{len(row.ran)} run]", flush=True)

        rows = mutate(proxy, mutants, tapes if args.matrix else None, model, emit)
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
