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
`--write` records the matrix in conformance/reports/mutation.{json,md}, stamped (benchmarks/stamp.py), with
each catching case's failure reason per (mutant, case); report cards print the score computed from its
rows. `--mark-missing` adds a row marked "not yet run" for every mutant and case the committed matrix
lacks (no server needed): the file then names every mutant and case, and the score counts those as not
caught. tests/conformance/test_matrix.py fails when a mutant or case is in neither.
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
    reasons: dict[str, str] = field(default_factory=dict)  # case -> why it failed against this mutant

    @property
    def right(self) -> list[str]:
        """The failed cases whose reason names what the mutant broke (Mutant.names): the ones that caught it."""
        return [c for c in self.failed if self.mutant.named_by(self.reasons.get(c))]

    @property
    def missed(self) -> list[str]:
        """Listed catchers that did not catch it (passed, or failed for another reason)."""
        return [c for c in self.mutant.catches if c in self.ran and c not in self.right]


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
                  [n for n in (tapes or {}) if n not in names],
                  {r.name: r.reason for r in results if r.status == "fail"})
        emit(row)
        rows.append(row)
    return rows


OUTSIDE = {"fuzz.": "slow: in the matrix only with --fuzz; CI runs each under its listed mutant (test_mutants.py)",
           "loading.": "needs a server still loading: CI runs each under its listed mutant (test_conformance_loading.py)"}


def outside_matrix(case: str) -> str | None:
    """Why a case is not in a matrix run by design, or None."""
    return next((why for prefix, why in OUTSIDE.items() if case.startswith(prefix)), None)


def completeness(data: dict) -> dict[str, list[str]]:
    """What the matrix file lacks: mutants and cases absent from it, and those present only as "not yet run"."""
    import conformance.cases  # noqa: F401

    rows = data.get("rows", [])
    in_rows = {r["mutant"] for r in rows}
    run_rows = {r["mutant"] for r in rows if r.get("run", True)}
    cases_run = {c for r in rows if r.get("run", True) for c in r.get("ran", []) + r.get("untouched", [])}
    not_run_cases = set(data.get("cases_not_yet_run", []))
    names = [c.name for c in runner.REGISTRY]
    ready = [m for m in MUTANTS if m.needs == "ready"]  # a "loading" mutant needs a loading server: CI's, not the matrix's
    return {"missing_mutants": [m.name for m in ready if m.name not in in_rows],
            "not_run_mutants": [m.name for m in ready if m.name in in_rows and m.name not in run_rows],
            "unknown_mutants": sorted(in_rows - {m.name for m in MUTANTS}),
            "missing_cases": [n for n in names if n not in cases_run and n not in not_run_cases and not outside_matrix(n)],
            "not_run_cases": [n for n in names if n in not_run_cases],
            "unknown_cases": sorted((cases_run | not_run_cases) - set(names))}


def for_the_right_reason(row: dict) -> list[str]:
    """The cases of a matrix row that caught its mutant by failing for the reason it names (Mutant.names);
    a row recorded before reasons were (no `reasons`) counts its catches as they stand."""
    mutant = next((m for m in MUTANTS if m.name == row["mutant"]), None)
    if mutant is None or "reasons" not in row:
        return list(row.get("caught_by", []))
    return [c for c in row.get("caught_by", []) if mutant.named_by(row["reasons"].get(c))]


def wrong_reasons(data: dict) -> list[tuple[str, str, str]]:
    """(mutant, case, reason) for each case that failed against a mutant without naming what it broke: it
    failed for another reason, and has not shown that it checks this behaviour (not a catch)."""
    return [(r["mutant"], case, (r.get("reasons") or {}).get(case, "")) for r in data.get("rows", [])
            if r.get("run", True) for case in r.get("caught_by", []) if case not in for_the_right_reason(r)]


def score(data: dict) -> dict:
    """The score from the rows themselves: caught of every mutant in mutants.py (never a stored figure)."""
    gaps = completeness(data)
    current = {m.name for m in MUTANTS if m.needs == "ready"}
    caught = sum(1 for r in data.get("rows", []) if r["mutant"] in current and r.get("run", True) and for_the_right_reason(r))
    return {"caught": caught, "mutants": len(current), "not_run": len(gaps["not_run_mutants"]) + len(gaps["missing_mutants"]),
            "cases_not_run": len(gaps["not_run_cases"]) + len(gaps["missing_cases"])}


def mark_missing(path: Path | None = None) -> dict:
    """Adds "not yet run" rows for every mutant, and names every case, the matrix file lacks."""
    path = path or REPORTS / "mutation.json"
    data = json.loads(path.read_text())
    gaps = completeness(data)
    for name in gaps["missing_mutants"]:
        m = next(m for m in MUTANTS if m.name == name)
        data["rows"].append({"mutant": m.name, "breaks": m.breaks, "listed": list(m.catches), "run": False,
                             "status": "not yet run", "ran": [], "caught_by": [], "untouched": []})
    data["cases_not_yet_run"] = sorted(set(data.get("cases_not_yet_run", [])) | set(gaps["missing_cases"]))
    if gaps["missing_mutants"] or gaps["missing_cases"]:
        from benchmarks.stamp import stamp
        info = stamp("python -m conformance.mutation --mark-missing")
        data["stale"] = (f"rows marked 'not yet run' added by --mark-missing on {info['date']} at commit "
                         f"{(info['commit'] or '?')[:12]}: the matrix ran on {data.get('date')}, before those mutants and cases")
    data.update(caught=score(data)["caught"], mutants=score(data)["mutants"])  # the stored figures, as the rows say
    _dump(path, data)
    return data


def _dump(path: Path, data: dict) -> None:
    head = json.dumps({k: v for k, v in data.items() if k != "rows"}, indent=2)[:-2]  # one row a line: readable diffs
    path.write_text(head + ',\n  "rows": [\n' + ",\n".join("    " + json.dumps(r) for r in data["rows"]) + "\n  ]\n}\n")


def write(rows: list[Row], meta: dict) -> dict:
    import conformance.cases  # noqa: F401

    caught = sum(1 for r in rows if r.right)
    by_case: dict[str, list[str]] = {}
    for r in rows:
        for name in r.right:
            by_case.setdefault(name, []).append(r.mutant.name)
    try:
        from benchmarks.stamp import stamp
        info = stamp(meta.pop("command", None))
    except ImportError:  # the suite run from elsewhere than this repository
        info = None
    data = {**meta, "stamp": info, "mutants": len(rows), "caught": caught,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cases_catching": len(by_case),
            "rows": [{"mutant": r.mutant.name, "breaks": r.mutant.breaks, "listed": list(r.mutant.catches),
                      "ran": r.ran, "caught_by": r.failed, "untouched": r.untouched, "reasons": r.reasons} for r in rows]}
    REPORTS.mkdir(exist_ok=True)
    _dump(REPORTS / "mutation.json", data)
    matrix = meta.get("mode") == "matrix"
    out = [f"# Mutation run: {data['caught']}/{data['mutants']} mutants caught", "",
           "Made by `python -m conformance.mutation --base-url URL" + (" --matrix" if matrix else "") + " --write` "
           "(conformance/mutation.py; the mutants are conformance/mutants.py).", "",
           f"- upstream: {meta.get('upstream')}", f"- mode: {meta.get('mode')}", f"- date: {data['date']}",
           f"- seconds: {meta.get('seconds')}"]
    if info:
        from benchmarks.stamp import header
        out += ["", *header(info)]
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
        names = [f"**{n}**" if n in r.mutant.catches else n for n in r.right]
        missed = [f"~~{n}~~ (listed, {'failed for another reason' if n in r.failed else 'passed'})" for n in r.missed]
        other = [n for n in r.failed if n not in r.right and n not in r.missed]
        cell = ", ".join(names + missed) or "**NOT CAUGHT**"
        if other:
            cell += f" (also failed, for another reason: {', '.join(other)})"
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
    p.add_argument("--base-url", help="a server that passes the suite, e.g. http://127.0.0.1:1234/v1")
    p.add_argument("--mutants", help="comma-separated mutant names (default: every mutant that a ready server can show)")
    p.add_argument("--matrix", action="store_true", help="every mutant against every case it touches, not only its listed catchers")
    p.add_argument("--fuzz", action="store_true", help="with --matrix: include the (slow) fuzz cases")
    p.add_argument("--write", action="store_true", help="record the score in conformance/reports/mutation.{json,md}")
    p.add_argument("--mark-missing", action="store_true",
                   help="no run: add 'not yet run' rows to the committed matrix for every mutant and case it lacks")
    args = p.parse_args(argv)
    if args.mark_missing:
        data = mark_missing()
        print(json.dumps({**score(data), **completeness(data)}, indent=1))
        return 0
    if not args.base_url:
        p.error("--base-url is required")
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
            mark = "CAUGHT" if row.right else "MISSED"
            extra = f"  (listed but not caught by: {', '.join(row.missed)})" if row.missed else ""
            other = [c for c in row.failed if c not in row.right]
            extra += f"  (failed for another reason: {', '.join(other)})" if other else ""
            print(f"{mark} {row.mutant.name}: {', '.join(row.right) or '-'}{extra}  [{len(row.ran)} run]", flush=True)

        rows = mutate(proxy, mutants, tapes if args.matrix else None, model, emit)
    finally:
        proxy.close()
    seconds = round(time.monotonic() - started, 1)
    caught = sum(1 for r in rows if r.right)
    print(f"mutation score {caught}/{len(rows)} mutants caught ({seconds} s)")
    if args.matrix:
        silent = sorted(set(case_names(args.fuzz)) - {c for r in rows for c in r.right})
        print(f"cases that caught no mutant: {', '.join(silent) or 'none'}")
    if args.write:
        command = "python -m conformance.mutation " + " ".join(sys.argv[1:] if argv is None else argv)
        write(rows, {"upstream": args.base_url, "mode": "matrix" if args.matrix else "listed catchers", "seconds": seconds,
                     "command": command})
    return 0 if caught == len(rows) and not any(r.missed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
