"""The committed mutation matrix (conformance/reports/mutation.json) keeps up with the suite (no server).

Every mutant of mutants.py that a ready server can show, and every case, must appear in the matrix:
run, or in a row / list explicitly marked "not yet run" (`python -m conformance.mutation --mark-missing`),
so that the file names its own gaps and the score counts them as not caught. A mutant or case added
without either fails here, naming it. The score printed in report cards is computed from the rows.
"""
from __future__ import annotations

import copy
import json

from conformance import mutation, report
from conformance.mutants import MUTANTS

COMMITTED = json.loads(mutation.REPORTS.joinpath("mutation.json").read_text())


def test_every_mutant_and_case_is_in_the_committed_matrix():
    gaps = mutation.completeness(COMMITTED)
    absent = {k: v for k, v in gaps.items() if k in ("missing_mutants", "missing_cases", "unknown_mutants", "unknown_cases") and v}
    assert not absent, (f"the committed matrix lacks these (run `python -m conformance.mutation --base-url URL --matrix "
                        f"--write`, or mark them with --mark-missing): {absent}")


def test_rows_of_a_stamped_run_record_why_each_case_caught_its_mutant():
    """A run made since reasons were recorded (it has a stamp) gives each (mutant, catching case) its failure."""
    if COMMITTED.get("stamp") is None:
        assert COMMITTED.get("stale"), "an unstamped matrix (before reasons were recorded) must say it is stale"
        return
    lacking = [(r["mutant"], c) for r in COMMITTED["rows"] if r.get("run", True)
               for c in r["caught_by"] if not (r.get("reasons") or {}).get(c)]
    assert not lacking, lacking


def test_every_mutant_declares_what_it_breaks():
    assert [m.name for m in MUTANTS if not m.names] == []


def test_every_mutant_is_caught_for_the_right_reason():
    """A case catches a mutant only by failing for the right reason: its recorded failure names one of the
    mutant's `names` (conformance/mutants.py). Every mutant run has such a catch, and every listed catcher
    (the cases CI runs it against) is one; other cases may fail against it for other reasons (not catches)."""
    if COMMITTED.get("stamp") is None:
        assert COMMITTED.get("stale"), "an unstamped matrix (before reasons were recorded) must say it is stale"
        return
    by_name = {m.name: m for m in MUTANTS}
    rows = [r for r in COMMITTED["rows"] if r.get("run", True) and r["mutant"] in by_name]
    uncaught = [r["mutant"] for r in rows if not mutation.for_the_right_reason(r)]
    assert not uncaught, f"caught by no case for the reason it names: {uncaught}"
    wrong = {(m, c): reason[:200] for m, c, reason in mutation.wrong_reasons(COMMITTED) if c in by_name[m].catches}
    assert not wrong, f"listed catchers that failed for another reason: {wrong}"


def test_the_reason_check_sees_a_catch_for_another_reason():
    row = {"mutant": "chat_no_usage", "caught_by": ["chat.plain", "chat.stop"],
           "reasons": {"chat.plain": "CreateChatCompletionResponse: 'usage' is a required property",
                       "chat.stop": "expected 200, got 500: Internal Server Error"}}
    assert mutation.for_the_right_reason(row) == ["chat.plain"]
    assert mutation.wrong_reasons({"rows": [row]}) == [("chat_no_usage", "chat.stop", row["reasons"]["chat.stop"])]
    data = {"rows": [{**row, "caught_by": ["chat.stop"]}]}
    assert mutation.score(data)["caught"] == 0


def test_the_checker_sees_a_dropped_mutant_and_a_dropped_case():
    """Against a doctored matrix: one mutant's row removed, one case removed from every row."""
    data = copy.deepcopy(COMMITTED)
    gone = data["rows"].pop(0)["mutant"]
    case = "chat.plain"
    for row in data["rows"]:
        for key in ("ran", "untouched", "caught_by"):
            row[key] = [c for c in row[key] if c != case]
    gaps = mutation.completeness(data)
    assert gaps["missing_mutants"] == [gone]
    assert gaps["missing_cases"] == [case]


def test_the_score_comes_from_the_rows_not_a_stored_figure(tmp_path):
    data = copy.deepcopy(COMMITTED)
    data.update(caught=999, mutants=999)  # a stored figure is never copied
    ready = [m.name for m in MUTANTS if m.needs == "ready"]
    data["rows"] = [r for r in data["rows"] if r["mutant"] != ready[0]]
    for r in data["rows"]:
        r.update(run=True, caught_by=r["caught_by"] or ["chat.plain"])
    data.pop("cases_not_yet_run", None)
    path = tmp_path / "mutation.json"
    path.write_text(json.dumps(data))
    line = report.mutation_score(path)
    assert line.startswith(f"mutation score {len(ready) - 1}/{len(ready)} mutants caught"), line
    assert "1 mutant(s) not yet run" in line, line
    assert "999" not in line


def test_the_committed_score_line_says_what_is_not_run():
    s = mutation.score(COMMITTED)
    line = report.mutation_score()
    assert line.startswith(f"mutation score {s['caught']}/{s['mutants']} ")
    if s["not_run"]:
        assert f"{s['not_run']} mutant(s) not yet run" in line
