"""Targets, the readable table, and the PNG plot (Agg backend) of one or several runs."""
from __future__ import annotations

import json
from pathlib import Path

# (key, description, comparison, bound) from issues 4 and 5, checked on whatever was measured
TARGETS = [
    ("single_over_reference", "single stream / in-process reference (a), end to end", ">=", 0.97),
    ("aggregate8_over_single", "aggregate tok/s at concurrency 8 / own single stream", ">=", 1.3),
    ("failures_at_8", "failed or truncated streams at concurrency 8", "==", 0),
    ("prefix_shared_over_fresh", "TTFT shared 1k-token system prompt / fresh one", "<=", 0.25),
    ("burst_worst8_over_single", "burst: worst TTFT at 8 users / single-user TTFT", "<=", 1.5),
]


def _ratio(a, b):
    return a / b if a is not None and b else None


def derive(res: dict) -> None:
    """Ratios and target checks, added to `res` in place."""
    ref = (res.get("reference") or {}).get("bare_loop") or {}
    single = res.get("single") or {}
    conc = res.get("concurrency") or {}
    if single:
        # paired: each HTTP run over the reference run just before it, the median of those ratios
        single["ratio_e2e"] = single.get("paired_ratio_e2e") or _ratio(single.get("e2e_tps"), ref.get("e2e_tps"))
        single["ratio_decode"] = _ratio(single.get("decode_tps"), ref.get("decode_tps"))
    own_single = single.get("e2e_tps") or (conc.get("1") or {}).get("aggregate_tps")
    for level in conc.values():
        level["over_single"] = _ratio(level.get("aggregate_tps"), own_single)
    burst = res.get("burst") or {}
    one = (burst.get("1") or {}).get("ttft_median")
    for level in burst.values():
        level["worst_over_single"] = _ratio(level.get("ttft_worst"), one)
        level["median_over_single"] = _ratio(level.get("ttft_median"), one)
    values = {
        "single_over_reference": single.get("ratio_e2e"),
        "aggregate8_over_single": (conc.get("8") or {}).get("over_single"),
        "failures_at_8": (conc.get("8") or {}).get("failures"),
        "prefix_shared_over_fresh": (res.get("prefix") or {}).get("ratio"),
        "burst_worst8_over_single": (burst.get("8") or {}).get("worst_over_single"),
    }
    # a figure taken over failed streams proves nothing: its target counts as missed
    failures = {
        "single_over_reference": single.get("failures"),
        "aggregate8_over_single": (conc.get("8") or {}).get("failures"),
        "failures_at_8": 0,
        "prefix_shared_over_fresh": (res.get("prefix") or {}).get("failures"),
        "burst_worst8_over_single": sum(level.get("failures") or 0 for level in burst.values()),
    }
    checks = {}
    for key, desc, op, bound in TARGETS:
        v = values[key]
        met = None if v is None else {">=": v >= bound, "<=": v <= bound, "==": v == bound}[op]
        checks[key] = {"description": desc, "value": v, "target": f"{op} {bound}", "met": met,
                       "failed_streams": failures[key] or 0}
        if met and failures[key]:
            checks[key]["met"] = False
    res["targets"] = checks


# issue 12: ours against llama-server, measured in the same run (paired medians)
VERSUS_TARGETS = [
    ("single", "1 stream, end-to-end tok/s: ours / llama-server", ">=", 1.0),
    ("aggregate8", "8 streams, aggregate tok/s: ours / llama-server", ">=", 1.15),
    ("prefix_fresh", "fresh ~1k-token prompt, TTFT: ours / llama-server", "<=", 1.0),
    ("cached_over_fresh", "cached prefix TTFT / fresh TTFT (ours)", "<=", 0.04),
    ("burst8_worst_over_single", "8-user burst, worst TTFT / single user (ours)", "<=", 1.5),
]
QUIET = 0.10


def _pairs(runs_a: list[dict], runs_b: list[dict], value) -> tuple[list[float], int, int]:
    """Per repeat, value(run of a) / value(run of b): (the quiet pairs' ratios if any were quiet, else
    all of them; how many were quiet; how many pairs there were)."""
    by_b = {r.get("repeat", i): r for i, r in enumerate(runs_b)}
    pairs = []
    for i, ra in enumerate(runs_a):
        rb = by_b.get(ra.get("repeat", i))
        if rb is None:
            continue
        va, vb = value(ra), value(rb)
        if va is None or not vb:
            continue
        quiet = all(r.get("other_cpu") is None or r["other_cpu"] <= QUIET for r in (ra, rb))
        pairs.append((va / vb, quiet))
    quiet = [x for x, q in pairs if q]
    return (quiet or [x for x, _ in pairs]), len(quiet), len(pairs)


def _median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def versus(a: dict, b: dict) -> dict:
    """Ours (`a`) against another server (`b`) measured in the same run: per figure, both medians and
    the median of the per-repeat ratios (a run of each, taken back to back)."""
    figures: dict[str, dict] = {}

    def add(key, desc, sec_a, sec_b, field, value):
        if not sec_a or not sec_b:
            return
        ratios, n_quiet, n_pairs = _pairs(sec_a.get("runs", []), sec_b.get("runs", []), value)
        figures[key] = {"description": desc, "ours": sec_a.get(field), "theirs": sec_b.get(field),
                        "ratio": _median(ratios), "ratio_of_medians": _ratio(sec_a.get(field), sec_b.get(field)),
                        "pairs": len(ratios), "quiet_pairs": n_quiet, "all_pairs": n_pairs}

    add("single", "1 stream, end-to-end tok/s", a.get("single"), b.get("single"), "e2e_tps",
        lambda r: r.get("e2e_tps") if not r.get("failure") else None)
    add("single_decode", "1 stream, decode tok/s", a.get("single"), b.get("single"), "decode_tps",
        lambda r: r.get("decode_tps") if not r.get("failure") else None)
    add("single_cpu", "1 stream, server CPU ms per token", a.get("single"), b.get("single"),
        "server_cpu_ms_per_token",
        lambda r: 1000 * r["server_cpu_s"] / r["tokens"] if r.get("server_cpu_s") and r.get("tokens") else None)
    for c in (a.get("concurrency") or {}):
        add(f"aggregate{c}", f"{c} streams, aggregate tok/s", a["concurrency"][c], (b.get("concurrency") or {}).get(c),
            "aggregate_tps", lambda r: r["aggregate_tps"] if not any(s["failure"] for s in r["streams"]) else None)
    add("prefix_fresh", "fresh ~1k-token prompt, TTFT s", a.get("prefix"), b.get("prefix"), "ttft_fresh",
        lambda r: r["fresh"]["ttft"] if not r["fresh"]["failure"] else None)
    add("prefix_cached", "the same prompt cached, TTFT s", a.get("prefix"), b.get("prefix"), "ttft_shared",
        lambda r: r["shared"]["ttft"] if not r["shared"]["failure"] else None)
    for c in (a.get("burst") or {}):
        add(f"burst{c}_worst", f"burst of {c} users, worst TTFT s", a["burst"][c], (b.get("burst") or {}).get(c),
            "ttft_worst", lambda r: r["ttft_worst"] if not r["failures"] else None)
    own = {  # figures of ours alone, as ratios within the run
        "cached_over_fresh": ((a.get("prefix") or {}).get("ratio"), (b.get("prefix") or {}).get("ratio")),
        "burst8_worst_over_single": (((a.get("burst") or {}).get("8") or {}).get("worst_over_single"),
                                     ((b.get("burst") or {}).get("8") or {}).get("worst_over_single")),
    }
    targets = {}
    for key, desc, op, bound in VERSUS_TARGETS:
        if key in own:
            v, theirs = own[key]
        else:
            v, theirs = (figures.get(key) or {}).get("ratio"), None
        met = None if v is None else (v >= bound if op == ">=" else v <= bound)
        targets[key] = {"description": desc, "value": v, "llama_server": theirs, "target": f"{op} {bound}", "met": met}
    return {"labels": [a["meta"]["label"], b["meta"]["label"]], "figures": figures, "targets": targets,
            "started": a["meta"].get("started"),
            "other_cpu": {name: (a["meta"].get("cpu_share_of_other_processes") or {}).get(name, {}).get("other")
                          for name in ("single", "concurrency", "prefix", "burst")}}


def versus_table(v: dict) -> str:
    ours, theirs = v["labels"]
    lines = [f"== {ours} vs {theirs}, same run, alternating; ratio = median over back-to-back pairs "
             f"(quiet pairs only, when there are any) =="]
    lines.append(f"  {'figure':38s} {ours:>12} {theirs:>12} {'ratio':>7} {'pairs (quiet)':>14}")
    for f in v["figures"].values():
        fmt = "{:.3f}" if (f["ours"] or 0) < 20 else "{:.1f}"
        lines.append(f"  {f['description']:38s} {_f(f['ours'], fmt):>12} {_f(f['theirs'], fmt):>12} "
                     f"{_f(f['ratio'], '{:.3f}'):>7} {f['pairs']:>8} ({f['quiet_pairs']})")
    lines.append("targets (issue 12):")
    for t in v["targets"].values():
        mark = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        extra = f" (llama-server: {_f(t['llama_server'], '{:.3f}')})" if t["llama_server"] is not None else ""
        lines.append(f"  {t['description']:55s} {_f(t['value'], '{:.3f}'):>8} (target {t['target']}): {mark}{extra}")
    return "\n".join(lines)


def _f(v, fmt="{:.1f}", none="-"):
    return none if v is None else fmt.format(v)


def table(res: dict) -> str:
    lines = []
    meta = res["meta"]
    lines.append(f"== {meta['label']}: {meta['base_url']} ({meta['model_id']}), "
                 f"{meta['cpus']} cpus, load {meta['load_before']} -> {meta['load_after']}, "
                 "medians of " + ", ".join(f"{k} x{n}" for k, n in meta["repeats"].items()) + " ==")
    ref = res.get("reference") or {}
    if ref:
        lines.append("in-process references (no HTTP), 128 tokens greedy:")
        for key, name in (("bare_loop", "(a) llama_decode loop"), ("high_level", "(b) Llama.create_completion")):
            r = ref.get(key)
            if r and r.get("paired_with_single"):
                name += ", paired"
            if r:
                lines.append(f"  {name:30s} {_f(r.get('e2e_tps')):>7} tok/s end to end"
                             f"   {_f(r.get('decode_tps')):>7} tok/s decode"
                             f"   (runs {_f(r.get('e2e_tps_min'))}-{_f(r.get('e2e_tps_max'))})")
    s = res.get("single")
    if s:
        lines.append("single stream over HTTP (SSE, /v1/completions):")
        lines.append(f"  {'':30s} {_f(s.get('e2e_tps')):>7} tok/s end to end"
                     f"   {_f(s.get('decode_tps')):>7} tok/s decode   TTFT {_f(s.get('ttft'), '{:.3f}')} s")
        name = "ratio to (a), paired runs" if s.get("paired_ratio_e2e") else "ratio to (a)"
        lines.append(f"  {name:30s} {_f(s.get('ratio_e2e'), '{:.3f}'):>7}"
                     f"              {_f(s.get('ratio_decode'), '{:.3f}'):>7}"
                     f"   failures {s.get('failures')}")
    conc = res.get("concurrency")
    if conc:
        lines.append("concurrency (distinct prompts, 128 tokens each, all sent at once):")
        lines.append(f"  {'C':>3} {'aggregate tok/s':>16} {'x single':>9} {'TTFT p50 s':>11} {'TTFT p95 s':>11}"
                     f" {'failed':>9}")
        for c in conc.values():
            lines.append(f"  {c['concurrency']:>3} {_f(c['aggregate_tps']):>16} {_f(c.get('over_single'), '{:.2f}'):>9}"
                         f" {_f(c['ttft_p50'], '{:.3f}'):>11} {_f(c['ttft_p95'], '{:.3f}'):>11}"
                         f" {c['failures']:>4}/{c['streams']:<4}")
    p = res.get("prefix")
    if p:
        lines.append(f"shared prefix (~{p['system_tokens']}-token system prompt):")
        lines.append(f"  TTFT fresh {_f(p['ttft_fresh'], '{:.3f}')} s, shared with the previous request "
                     f"{_f(p['ttft_shared'], '{:.3f}')} s, ratio {_f(p['ratio'], '{:.3f}')}, failures {p['failures']}")
    b = res.get("burst")
    if b:
        lines.append("burst (one fresh ~1k-token system prompt, distinct questions, all at once):")
        lines.append(f"  {'users':>5} {'TTFT median s':>14} {'TTFT worst s':>13} {'worst/single':>13} {'failed':>7}")
        for c in b.values():
            lines.append(f"  {c['users']:>5} {_f(c['ttft_median'], '{:.2f}'):>14} {_f(c['ttft_worst'], '{:.2f}'):>13}"
                         f" {_f(c.get('worst_over_single'), '{:.2f}'):>13} {c['failures']:>7}")
    machine = meta.get("cpu_share_of_other_processes") or {}
    if machine:
        lines.append("share of all CPUs other processes took while measuring (whole scenario / worst run):")
        lines.append("  " + ", ".join(f"{k} {_f(v.get('other'), '{:.0%}')}"
                                      + (f"/{_f(v.get('worst_run'), '{:.0%}')}" if v.get("worst_run") is not None else "")
                                      for k, v in machine.items())
                     + "; waited for quiet " + _f(sum(v.get("waited") or 0 for v in machine.values()), "{:.0f}") + " s")
        left = []
        for name in ("single", "prefix"):
            sec = res.get(name) or {}
            if sec.get("runs_used") is not None and sec["runs_used"] < len(sec.get("runs", [])):
                left.append(f"{name} {len(sec['runs']) - sec['runs_used']} of {len(sec['runs'])}")
        for name, unit in (("concurrency", "C="), ("burst", "users=")):
            for k, sec in (res.get(name) or {}).items():
                if sec.get("runs_used") is not None and sec["runs_used"] < len(sec.get("runs", [])):
                    left.append(f"{name} {unit}{k} {len(sec['runs']) - sec['runs_used']} of {len(sec['runs'])}")
        if left:
            lines.append("  runs left out of the medians (other processes over 10% of the CPUs): " + ", ".join(left))
        noisy = []
        for name in ("single", "prefix"):
            runs = (res.get(name) or {}).get("runs") or []
            if runs and all((r.get("other_cpu") or 0) > 0.10 for r in runs):
                noisy.append(name)
        for name, unit in (("concurrency", "C="), ("burst", "users=")):
            for k, sec in (res.get(name) or {}).items():
                if sec.get("runs") and all((r.get("other_cpu") or 0) > 0.10 for r in sec["runs"]):
                    noisy.append(f"{name} {unit}{k}")
        if noisy:
            lines.append("  WARNING: no quiet run at all, figures not comparable: " + ", ".join(noisy))
        busy = [k for k, v in machine.items() if k == "reference" and (v.get("other") or 0) > 0.10]
        if busy:
            lines.append(f"  WARNING: other processes were busy during {', '.join(busy)}: on 2 cores llama.cpp"
                         " slows many times over; those figures are not comparable")
    t = res.get("targets")
    if t:
        lines.append("targets (issues 4, 5):")
        for key, chk in t.items():
            mark = {True: "met", False: "MISSED", None: "not measured"}[chk["met"]]
            if chk["failed_streams"] and key != "failures_at_8":
                mark += f" ({chk['failed_streams']} failed streams)"
            val = _f(chk["value"], "{:.3f}") if isinstance(chk["value"], float) else _f(chk["value"], "{}")
            lines.append(f"  {chk['description']:55s} {val:>8} (target {chk['target']}): {mark}")
    return "\n".join(lines)


def plot(runs: list[dict], path: Path) -> None:
    """Throughput and TTFT against concurrency, burst TTFT against users; one colour per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    (ax_tps, ax_ttft), (ax_burst, ax_prefix) = axes
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, res in enumerate(runs):
        col, label = colours[i % len(colours)], res["meta"]["label"]
        conc = res.get("concurrency") or {}
        if conc:
            xs = [c["concurrency"] for c in conc.values()]
            ax_tps.plot(xs, [c["aggregate_tps"] for c in conc.values()], "o-", color=col, label=f"{label}: aggregate")
            ax_ttft.plot(xs, [c["ttft_p50"] for c in conc.values()], "o-", color=col, label=f"{label}: p50")
            ax_ttft.plot(xs, [c["ttft_p95"] for c in conc.values()], "s--", color=col, label=f"{label}: p95")
            fails = [(c["concurrency"], c["aggregate_tps"], c["failures"]) for c in conc.values() if c["failures"]]
            for x, y, n in fails:
                ax_tps.annotate(f"{n} failed", (x, y), textcoords="offset points", xytext=(4, -12), color=col,
                                fontsize=8)
        single = (res.get("single") or {}).get("e2e_tps")
        if single:
            ax_tps.axhline(single, color=col, ls=":", lw=1, label=f"{label}: single stream (HTTP)")
        ref = ((res.get("reference") or {}).get("bare_loop") or {}).get("e2e_tps")
        if ref:
            ax_tps.axhline(ref, color="black", ls="-.", lw=1, label=f"in-process reference (a), {label} run")
        burst = res.get("burst") or {}
        if burst:
            xs = [c["users"] for c in burst.values()]
            ax_burst.plot(xs, [c["ttft_median"] for c in burst.values()], "o-", color=col, label=f"{label}: median")
            ax_burst.plot(xs, [c["ttft_worst"] for c in burst.values()], "s--", color=col, label=f"{label}: worst")
            for c in burst.values():
                if c["failures"] and c["ttft_worst"] is not None:
                    ax_burst.annotate(f"{c['failures']} failed", (c["users"], c["ttft_worst"]), color=col, fontsize=8,
                                      textcoords="offset points", xytext=(4, -12))
        prefix = res.get("prefix")
        if prefix:
            w = 0.8 / len(runs)
            ax_prefix.bar([0 + i * w, 1 + i * w], [prefix["ttft_fresh"] or 0, prefix["ttft_shared"] or 0], w,
                          color=col, label=label)
    ax_tps.set(title="Aggregate completion throughput", xlabel="concurrent streams (128 tokens each)",
               ylabel="tokens/s")
    ax_ttft.set(title="Time to first token under concurrency", xlabel="concurrent streams", ylabel="seconds")
    ax_burst.set(title="Burst: users sharing one fresh ~1k-token system prompt", xlabel="users arriving together",
                 ylabel="TTFT, seconds")
    ax_prefix.set(title="TTFT with a ~1k-token system prompt", ylabel="seconds")
    mid = (len(runs) - 1) * 0.4 / len(runs)
    ax_prefix.set_xticks([mid, 1 + mid], ["fresh", "shared with the previous request"])
    for ax in (ax_tps, ax_ttft, ax_burst):
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8], ["1", "2", "4", "8"])
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    for ax in axes.flat:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    meta = runs[0]["meta"]
    fig.suptitle(f"Hearth benchmark, {Path(str(meta['model_id'])).name}, {meta['cpus']} cpus, {meta['started']}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def load(path: str) -> dict:
    return json.loads(Path(path).read_text())
