"""Fuzz every route of every openapi/*.yaml with schemathesis against a real server (see scripts/fuzz).

It starts `hearth serve` on a free loopback port over the default model, with an API key and tight
limits (short context, short timeout) so that no generated request can run long, then generates
valid (positive) and invalid (negative) requests for each operation, in parallel jobs. Every
response must:
- not be a 5xx (a declared 503 with Retry-After is allowed: the queue may fill; on Anthropic's routes
  its 529 overloaded_error, the count endpoints included: they tokenize through the engine's queue);
- have a status, content type and body as the spec declares (schemathesis's checks), and invalid
  requests must be rejected with a 4xx;
- as an SSE stream: every event is a chunk of the declared schema or an error event, ending in [DONE];
  the Responses and Messages streams (named events, no [DONE]): every event of its type's schema, the
  last one the stream's end (response.completed / incomplete / failed; message_stop or error);
- a valid (positive) request must be accepted: a 4xx is a failure ("valid request refused") unless it is
  one of REFUSED below, the refusals Hearth documents for requests its spec cannot rule out (each with
  its reason); the report counts the documented refusals per operation;
- where OpenAI's published document (conformance/openai-openapi.yaml) describes the route (the /v1 routes
  of openapi/openai.yaml), the body, every SSE chunk and every error body must also keep OpenAI's schema.
The budget goes to the API routes: the page, /health, /metrics and /static get few cases (their answers
hardly depend on the input), and half the positive cases of GET /v1/models/{model_id} name the loaded model.
The report (counts per route and mode, statuses, each kind of failure with a curl to reproduce it)
goes to docs/reports/fuzz.json and fuzz.md (--out), stamped with the commit, date, machine and command
(benchmarks/stamp.py; a run under 10,000 cases is marked short), and to stdout; exit 1 on any failure.
"""
from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import copy
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from benchmarks import stamp  # noqa: E402

KEY = "sk-fuzz"
MAX_TOKENS = 8  # positive cases: generations stay short
MAX_STREAM_EVENTS = 100_000
# One llama.cpp thread with passive OpenMP waits: on a shared machine two spinning threads made an 8-token
# answer take 5-10 s (each case ran into the request timeout); one thread took 0.5-0.9 s.
SERVER_FLAGS = ["--ctx-size", "512", "--request-timeout", "5", "--max-request-tokens", "256", "--max-queue", "32",
                "--threads", "1"]
STREAM_CHUNK = {"/chat/completions": "CreateChatCompletionStreamResponse", "/completions": "CreateCompletionResponse"}
# the named-event streams: the schema of each event type, and the types that may end the stream
RESPONSES_EVENTS = {
    **dict.fromkeys(["response.created", "response.in_progress", "response.completed", "response.incomplete",
                     "response.failed"], "ResponseLifecycleEvent"),
    **dict.fromkeys(["response.output_item.added", "response.output_item.done"], "ResponseOutputItemEvent"),
    **dict.fromkeys(["response.content_part.added", "response.content_part.done"], "ResponseContentPartEvent"),
    "response.output_text.delta": "ResponseTextDeltaEvent", "response.output_text.done": "ResponseTextDoneEvent",
    **dict.fromkeys(["response.reasoning_text.delta", "response.reasoning_text.done"], "ResponseReasoningTextEvent"),
    **dict.fromkeys(["response.function_call_arguments.delta", "response.custom_tool_call_input.delta"],
                    "ResponseCallDeltaEvent"),
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.custom_tool_call_input.done": "ResponseCustomToolCallInputDoneEvent",
}
MESSAGES_EVENTS = {"message_start": "MessageStartEvent", "content_block_start": "ContentBlockStartEvent",
                   "content_block_delta": "ContentBlockDeltaEvent", "content_block_stop": "ContentBlockStopEvent",
                   "message_delta": "MessageDeltaEvent", "message_stop": "MessageStopEvent", "ping": "PingEvent",
                   "error": "ErrorResponse"}
NAMED_STREAMS = {"/responses": (RESPONSES_EVENTS, {"response.completed", "response.incomplete", "response.failed"}),
                 "/messages": (MESSAGES_EVENTS, {"message_stop", "error"})}
# A valid request (by the spec's schema) that Hearth refuses by design, as docs/architecture.md's error table and
# docs/api.md say: (operation, status, error code, param; None for any) -> why. Any other 4xx to a positive case
# is a failure ("valid request refused").
CHAT, COMPLETIONS, EMBEDDINGS = "POST /v1/chat/completions", "POST /v1/completions", "POST /v1/embeddings"
REFUSED = {
    ("GET /static/{name}", 404, None, None): "any string is a valid name; only the page's own files exist",
    ("GET /v1/models/{model_id}", 404, "model_not_found", None): "an id that no loaded instance has (random strings)",
    ("POST /api/v1/models/load", 404, "model_not_found", None): "a catalog key not in the catalog (random strings)",
    ("POST /api/v1/models/load", 422, "invalid_value", "context_length"): "more context than the model was trained for",
    ("POST /api/v1/models/unload", 404, "model_not_found", None): "an instance id that is not loaded (random strings)",
    **{(op, 400, "context_length_exceeded", None): "a prompt longer than the fuzz server's 512-token context or its "
       "--max-request-tokens 256" for op in (CHAT, COMPLETIONS, EMBEDDINGS)},
    (COMPLETIONS, 422, "invalid_value", "suffix"): "not supported (docs/api.md): an explicit error, not silently ignored",
    (EMBEDDINGS, 422, "invalid_value", "dimensions"): "not supported (docs/api.md): vectors have the model's own size",
    (CHAT, 422, "invalid_value", "top_logprobs"): "top_logprobs without logprobs: true (OpenAI refuses it too)",
    **{(op, 422, "invalid_value", "logit_bias"): "keys must be token ids; JSON object keys are strings in the schema"
       for op in (CHAT, COMPLETIONS)},
    (CHAT, 400, "invalid_value", "tool_choice"): "tool_choice without tools, or naming functions not among them",
    **{(op, 400, "invalid_value", "stop"): "stop beside tools or a JSON response_format could cut the constrained "
       "output (docs/api.md)" for op in (CHAT, COMPLETIONS)},
    **{(op, 400, "invalid_value", "response_format"): "a JSON schema feature the grammar cannot enforce "
       "(docs/architecture.md's error table)" for op in (CHAT, COMPLETIONS)},
    (CHAT, 400, "invalid_value", "tools[i].function.parameters"): "a JSON schema feature the grammar cannot enforce "
    "(docs/api.md: a 400 naming it, param response_format or tools[i].function.parameters)",
    **{(op, 404, None, None): "an id with a newline: Starlette's Mount of /v1 matches `.*`, which stops at a newline, "
       "so the route is unknown (404 without a code); ids Hearth makes never hold one" for op in (
        "GET /v1/responses/{response_id}", "DELETE /v1/responses/{response_id}",
        "GET /v1/responses/{response_id}/input_items")},
}
RESPONSES, INPUT_TOKENS = "POST /v1/responses", "POST /v1/responses/input_tokens"
MESSAGES, COUNT_TOKENS = "POST /v1/messages", "POST /v1/messages/count_tokens"
REFUSED.update({
    **{(op, 400, "missing_required_parameter", None): "what the schema cannot require: an input (unless continuing a "
       "stored response), a function or custom tool's name, a call item's call_id" for op in (RESPONSES, INPUT_TOKENS)},
    **{(op, 400, "previous_response_not_found", "previous_response_id"): "an id that is not stored (random strings)"
       for op in (RESPONSES, INPUT_TOKENS)},
    **{(op, 400, "invalid_value", None): "what the schema leaves open (docs/api.md): a message item's role, tool_choice "
       "naming a tool not among tools, a custom tool's grammar that does not compile, a schema feature the grammar "
       "cannot enforce, two tools of one name" for op in (RESPONSES, INPUT_TOKENS)},
    **{(op, 400, "unsupported_content", None): "images and files: no vision model is loaded" for op in (RESPONSES, INPUT_TOKENS)},
    (RESPONSES, 400, "unsupported_parameter", None): "background: true and conversation (docs/api.md)",
    (RESPONSES, 400, "context_length_exceeded", None): "an input longer than the fuzz server's 512-token context",
    **{(op, 404, "response_not_found", None): "an id that is not stored (random strings)" for op in (
        "GET /v1/responses/{response_id}", "DELETE /v1/responses/{response_id}",
        "GET /v1/responses/{response_id}/input_items")},
    **{(op, 400, None, None): "Anthropic's errors carry no code: the checks Anthropic's API makes too, which the schema "
       "leaves open (a block for its role, an image, tool_choice naming a tool not among tools, stop_sequences beside "
       "tools, a schema feature the grammar cannot enforce) and, for create, a prompt over the fuzz server's "
       "512-token context" for op in (MESSAGES, COUNT_TOKENS)},
})
# Refusals that are not by design: the spec allows what the handler refuses (the spec should say it). Failures,
# matched before REFUSED, so that a broad entry above cannot hide them. None known: response_format json_schema
# without `json_schema` (chat, completions) and text.format json_schema without `name`/`schema` (responses) were
# such gaps until the specs required those fields (now a validation 400, which positive mode never sends).
SPEC_GAPS: tuple[str, ...] = ()
STREAM_MEDIA = "text/event-stream"
MODEL_ID = os.environ.get("HEARTH_FUZZ_MODEL_ID", "")  # the loaded model's id, for GET /v1/models/{model_id}


def operations() -> list[tuple[str, str, str]]:
    """(spec file, METHOD, path) for every operation of every spec."""
    import schemathesis

    out = []
    for spec in sorted((ROOT / "openapi").glob("*.yaml")):
        for result in schemathesis.openapi.from_path(str(spec)).get_all_operations():
            op = result.ok()
            out.append((str(spec), op.method.upper(), op.path))
    return out


def cap_generation(body) -> None:
    if isinstance(body, dict):
        for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
            value = body.get(key)
            if value is None or (isinstance(value, int) and not isinstance(value, bool) and not 0 < value <= MAX_TOKENS):
                body[key] = MAX_TOKENS
        if isinstance(body.get("n"), int) and not isinstance(body["n"], bool) and body["n"] > 4:
            body["n"] = 4


def check_named_stream(stream, path: str, schemas) -> str | None:
    kinds, ends = NAMED_STREAMS[path]
    if stream.done:
        return "a [DONE] event in a stream of named events"
    for i, event in enumerate(stream.chunks):
        name = kinds.get(event.get("type") if isinstance(event, dict) else None)
        if name is None:
            return f"SSE event {i + 1}: unknown event type {str(event)[:80]}"
        errors = schemas.errors({"$ref": f"#/components/schemas/{name}"}, event)
        if errors:
            return f"SSE event {i + 1} ({event['type']}): {errors[0]}"
        if event["type"] in ends and i != len(stream.chunks) - 1:
            return f"events after {event['type']}"
    if not stream.chunks or stream.chunks[-1]["type"] not in ends:
        return f"the stream ended without any of {sorted(ends)}"
    return None


def check_stream(text: str, path: str, schemas) -> str | None:
    from conformance import sse

    stream = sse.parse(sse.lines(text))
    if stream.problems:
        return stream.problems[0]
    if path in NAMED_STREAMS:
        return check_named_stream(stream, path, schemas)
    chunk_schema = {"$ref": f"#/components/schemas/{STREAM_CHUNK.get(path, 'CreateChatCompletionStreamResponse')}"}
    for i, chunk in enumerate(stream.chunks):
        is_error = isinstance(chunk, dict) and "error" in chunk
        errors = schemas.errors({"$ref": "#/components/schemas/ErrorResponse"} if is_error else chunk_schema, chunk)
        if errors:
            return f"SSE event {i + 1}: {errors[0]}"
        if is_error and i != len(stream.chunks) - 1:
            return "an error event is not the last event"
    ended_by_error = bool(stream.chunks) and "error" in stream.chunks[-1]
    if not stream.done and not ended_by_error:
        return "the stream ended without [DONE] or an error event"
    if stream.after_done:
        return "events after [DONE]"
    return None


def refusal(op: str, status: int, body) -> str | None:
    """Why Hearth documents this refusal of a valid request, or None (then it is a failure)."""
    error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    if any(gap in str(error.get("message")) for gap in SPEC_GAPS):
        return None
    code, param = error.get("code"), error.get("param")
    param = re.sub(r"\[\d+\]", "[i]", param) if isinstance(param, str) else param  # tools[3] -> tools[i]
    for key in ((op, status, code, param), (op, status, code, None), (op, status, None, None)):
        if key in REFUSED:
            return REFUSED[key]
    return None


def as_judged(op: str, request, body):
    """The body as OpenAI's published schema is shown it: two documented OpenAI forms that schema does not
    describe are judged as the conformance cases judge them (base64 embeddings decoded; with echo, the
    prompt's first token, whose logprob is null, left out)."""
    if not isinstance(request, dict) or not isinstance(body, dict):
        return body
    if op == EMBEDDINGS and request.get("encoding_format") == "base64":
        from conformance.cases.embeddings import decoded
        return decoded(copy.deepcopy(body))
    if op == COMPLETIONS and request.get("echo") and request.get("logprobs") is not None:
        from conformance.cases.logprobs import without_first_prompt_token
        return without_first_prompt_token(copy.deepcopy(body))
    return body


def header(response, name: str) -> str:
    value = response.headers.get(name) or response.headers.get(name.title()) or ""
    return value[0] if isinstance(value, list) else value


def run_job(job: tuple) -> dict:
    """One operation in one generation mode, in a process of its own (hypothesis is not thread-safe)."""
    spec, method, path, mode_name, examples, base, deadline, seed = job
    import httpx
    import yaml
    from hypothesis import HealthCheck, Phase, Verbosity, given, seed as hseed, settings
    from hypothesis.errors import Unsatisfiable
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi import checks as oas

    from conformance.schemas import SchemaSet

    document = yaml.safe_load(Path(spec).read_text())
    schemas = SchemaSet(document)
    schema = schemathesis.openapi.from_dict(document)
    # schemathesis reads 20 events of a stream by default, then stops: a longer stream would look cut
    # short. Ours are bounded (max_tokens x prompts); read them whole, within the request's timeout.
    schema.config.max_stream_events = MAX_STREAM_EVENTS
    op = next(r.ok() for r in schema.get_all_operations() if r.ok().method.upper() == method and r.ok().path == path)
    prefix = (document.get("servers") or [{"url": ""}])[0]["url"].rstrip("/")
    base_url = base + prefix
    mode = GenerationMode.POSITIVE if mode_name == "positive" else GenerationMode.NEGATIVE
    checks = [oas.status_code_conformance, oas.content_type_conformance, oas.response_schema_conformance,
              oas.negative_data_rejection]
    headers = {"Authorization": f"Bearer {KEY}"}
    declared = op.definition.raw.get("responses", {})
    out = {"op": f"{method} {prefix}{path}", "mode": mode_name, "calls": 0, "statuses": collections.Counter(), "failures": {},
           "asked": examples, "spec": spec, "method": method, "path": path, "refused": collections.Counter(),
           "openai_checked": 0}
    oracle = None
    if prefix == "/v1":  # OpenAI's document describes /v1 routes only; /api/v1 (LM Studio) and the page are Hearth's own
        from conformance.spec import ORACLE, load

        oracle = load(ORACLE)
        if not oracle.spec_path(path):
            oracle = None

    def fail(kind: str, case, reason: str) -> None:
        if kind not in out["failures"]:
            try:
                curl = case.as_curl_command(base_url=base_url, headers=headers)
            except Exception:
                curl = json.dumps(case.body, default=str)[:2000]
            out["failures"][kind] = {"reason": reason[:600], "curl": curl[:4000]}

    def check(case) -> None:
        out["calls"] += 1
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=120)
        except Exception as exc:  # a reset or dropped connection is the server's failure
            fail(type(exc).__name__, case, f"{type(exc).__name__}: {exc}")
            return
        status = response.status_code
        out["statuses"][status] += 1
        overloaded = status in (503, 529) and str(status) in declared and header(response, "retry-after")
        if status >= 500 and not overloaded:
            fail(f"HTTP {status}", case, f"HTTP {status}: {response.text[:300]}")
            return
        streamed = header(response, "content-type").startswith("text/event-stream")
        try:
            body = None if streamed else response.json()
        except ValueError:
            body = None
        if mode is GenerationMode.POSITIVE and 400 <= status < 500:
            why = refusal(out["op"], status, body)
            if why is None:
                error = (body or {}).get("error") if isinstance(body, dict) else None
                fail(f"valid request refused ({status} {(error or {}).get('code')})", case,
                     f"HTTP {status} to a request the spec allows, not a documented refusal: {response.text[:300]}")
                return
            error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
            out["refused"][" ".join(str(x) for x in (status, error.get("code"), error.get("param")) if x)] += 1
        if oracle is not None and (status == 200 or 400 <= status < 500):
            if streamed:
                from conformance import sse

                problems = []
                for chunk in sse.parse(sse.lines(response.text)).chunks:
                    media = "application/json" if isinstance(chunk, dict) and "error" in chunk else STREAM_MEDIA
                    problems += oracle.validate(method, path, 400 if media == "application/json" else status,
                                                as_judged(out["op"], case.body, chunk), media)
            else:
                problems = oracle.validate(method, path, status, as_judged(out["op"], case.body, body)) if body is not None else []
            out["openai_checked"] += 1
            if problems:
                fail("OpenAI's schema", case, f"HTTP {status}: breaks OpenAI's published schema: {problems[0]}")
                return
        if streamed:
            problem = check_stream(response.text, path, schemas)
            if problem:
                fail("SSE stream", case, problem)
            return
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except BaseException as exc:
            first = (getattr(exc, "exceptions", None) or [exc])[0]
            title = getattr(first, "title", type(first).__name__)
            message = " ".join(str(getattr(first, "message", first)).split())
            fail(title, case, f"HTTP {status}: {title}: {message}")

    @hseed(seed)
    @settings(max_examples=examples, phases=[Phase.explicit, Phase.generate], deadline=None, database=None,
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)
    @given(case=op.as_strategy(generation_mode=mode))
    def attempt(case) -> None:
        if time.time() > deadline:
            return
        if mode is GenerationMode.POSITIVE:
            cap_generation(case.body)
            if MODEL_ID and "model_id" in (case.path_parameters or {}) and out["calls"] % 2 == 0:
                case.path_parameters["model_id"] = MODEL_ID
        check(case)

    try:
        attempt()
    except Unsatisfiable:
        pass
    out["statuses"] = dict(out["statuses"])
    out["refused"] = dict(out["refused"])
    return out


def start_server(env_extra: dict) -> tuple[subprocess.Popen, str, Path]:
    from support import free_port

    port = free_port()
    log = ROOT / ".pytest_cache" / f"fuzz-server-{port}.log"
    log.parent.mkdir(exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "hearth", "serve", "--port", str(port), *SERVER_FLAGS],
                            env={**os.environ, "HEARTH_API_KEY": KEY, "OMP_WAIT_POLICY": "PASSIVE", **env_extra},
                            cwd=ROOT,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    import httpx

    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"fuzz: the server exited with {proc.returncode}; see {log}")
        try:
            r = httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=2)
            if r.status_code == 200 and r.json()["data"]:
                return proc, base, log
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    sys.exit("fuzz: the server did not become ready")


def report(results: list[dict], args, elapsed: float, rounds: int, server_log: Path, exit_status: int | None,
           info: dict) -> dict:
    """The machine-readable result: every (operation, mode) with its cases, statuses and failures."""
    total = sum(r["calls"] for r in results)
    if info["short_run"] is None and total < args.cases:
        info["short_run"] = f"stopped by --max-time {args.max_time:.0f} s after {total:,} of {args.cases:,} cases"
    by_route: dict[str, int] = {}
    for r in results:
        by_route[r["op"]] = by_route.get(r["op"], 0) + r["calls"]
    return {"stamp": info,
            "config": {"cases": args.cases, "jobs": args.jobs, "max_time": args.max_time, "seed": args.seed,
                       "server_flags": SERVER_FLAGS, "max_tokens": MAX_TOKENS},
            "refused": {f"{op} {status} {code or '*'} {param or '*'}": why for (op, status, code, param), why in REFUSED.items()},
            "spec_gaps": list(SPEC_GAPS),
            "result": {"cases": total, "failure_kinds": sum(len(r["failures"]) for r in results),
                       "positive_4xx_documented": sum(sum(r["refused"].values()) for r in results),
                       "openai_schema_checked": sum(r["openai_checked"] for r in results),
                       "minutes": round(elapsed / 60, 1), "rounds": rounds, "server_exit": exit_status,
                       "server_tracebacks": server_log.read_text().count("Traceback")},
            "cases_by_route": by_route,
            "operations": [{k: r[k] for k in ("op", "mode", "calls", "statuses", "refused", "openai_checked", "failures")}
                           for r in results]}


def markdown(data: dict) -> str:
    res, cfg = data["result"], data["config"]
    total = res["cases"] or 1
    lines = [f"# Fuzzing: {res['cases']:,} cases, {res['failure_kinds']} kind(s) of failure", "",
             *stamp.header(data["stamp"]), "",
             f"{res['minutes']:.1f} min, {res['rounds']} round(s). Server: `hearth serve {' '.join(cfg['server_flags'])}` "
             f"with an API key, over the default model; positive cases capped at max_tokens {cfg['max_tokens']}. "
             "Every operation of every `openapi/*.yaml`, valid (positive) and invalid (negative) requests; an "
             "operation without parameters has one distinct case, and one whose only parameter is a free string has "
             "no invalid one.", "", "## Cases per route", "", "| route | cases | share |", "|---|---|---|"]
    for op, n in sorted(data["cases_by_route"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| `{op}` | {n:,} | {100 * n / total:.0f}% |")
    lines += ["", "## Per operation and mode", "",
              "A positive case answered 4xx fails unless the refusal is documented (next section); \"OpenAI\" counts the "
              "answers also validated against OpenAI's published schema.", "",
              "| operation | mode | cases | statuses | documented refusals | OpenAI | failures |", "|---|---|---|---|---|---|---|"]
    for r in data["operations"]:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(r["statuses"].items(), key=lambda kv: int(kv[0])))
        refused = ", ".join(f"{k}: {n}" for k, n in sorted(r["refused"].items()))
        lines.append(f"| `{r['op']}` | {r['mode']} | {r['calls']:,} | {statuses} | {refused} | {r['openai_checked']:,} | "
                     f"{len(r['failures'])} |")
    lines += ["", "## Documented refusals of valid requests", "", "| operation, status, code, param | why |", "|---|---|"]
    lines += [f"| `{k}` | {why} |" for k, why in data["refused"].items()]
    lines += ["", f"Server: exited with {res['server_exit']} after SIGTERM; tracebacks in its log: {res['server_tracebacks']}."]
    for r in data["operations"]:
        for kind, f in r["failures"].items():
            lines += ["", f"## {r['op']} ({r['mode']}): {kind}", "", f["reason"], "", "```", f["curl"], "```"]
    return "\n".join(lines) + "\n"


def merge(into: dict, more: dict) -> None:
    into["calls"] += more["calls"]
    into["asked"] = more["asked"]
    into["last_calls"] = more["calls"]
    for status, n in more["statuses"].items():
        into["statuses"][status] = into["statuses"].get(status, 0) + n
    for kind, f in more["failures"].items():
        into["failures"].setdefault(kind, f)
    for why, n in more["refused"].items():
        into["refused"][why] = into["refused"].get(why, 0) + n
    into["openai_checked"] += more["openai_checked"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10000, help="cases in all (spread over operations and modes)")
    parser.add_argument("--jobs", type=int, default=2, help="operations fuzzed at once")
    parser.add_argument("--max-time", type=float, default=5400,
                        help="seconds for the whole run: generation stops then, and the report says how many cases ran")
    parser.add_argument("--out", default="fuzz", help="report: OUT.json and OUT.md (a bare name: under docs/reports/)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--base-url", help="fuzz this running server (origin, no /v1; key sk-fuzz or none) instead of "
                                           "starting one, e.g. a conformance proxy with a mutant, to see the checks fail")
    parser.add_argument("--only", help="only operations whose 'METHOD /path' contains this (e.g. 'POST /chat')")
    args = parser.parse_args()
    default_cases = parser.get_default("cases")
    info = stamp.stamp(short=f"--cases {args.cases} (default {default_cases:,})" if args.cases < default_cases else None)
    ops = [o for o in operations() if not args.only or args.only in f"{o[1]} {o[2]}"]
    if args.only:
        info["short_run"] = (info["short_run"] + ", " if info["short_run"] else "") + f"--only {args.only!r}"
    if args.base_url:
        info["short_run"] = (info["short_run"] + ", " if info["short_run"] else "") + f"against --base-url {args.base_url}"
    # the budget goes to the API: routes with bodies first; model routes that only look names up, a little;
    # routes without parameters (a handful of distinct cases) and static files, almost nothing
    weights = [1 if "/static/" in p else 8 if m.lower() == "post" and "/models/" not in p else 2 if "{" in p or
               m.lower() == "post" else 1 for _, m, p in ops]
    unit = args.cases / (2 * sum(weights))
    import httpx

    if args.base_url:
        proc, base, log = None, args.base_url.rstrip("/"), Path(os.devnull)
    else:
        proc, base, log = start_server({})

    models = httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30).json()["data"]
    os.environ["HEARTH_FUZZ_MODEL_ID"] = models[0]["id"]  # the jobs' processes (spawned) read it
    started = time.monotonic()
    deadline = time.time() + args.max_time
    results: dict[tuple, dict] = {}
    jobs = [(spec, m, p, mode, max(1, int(unit * w * 1.02) + 1), base, deadline, args.seed)
            for (spec, m, p), w in zip(ops, weights) for mode in ("positive", "negative")]
    rounds = 0
    try:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.jobs) as pool:
            while jobs and time.time() < deadline:
                rounds += 1
                for r in pool.imap_unordered(run_job, jobs):
                    key = (r["op"], r["mode"])
                    if key in results:
                        merge(results[key], r)
                    else:
                        results[key] = {**r, "statuses": dict(r["statuses"]), "refused": dict(r["refused"]),
                                        "last_calls": r["calls"]}
                    print(f"fuzz: round {rounds}: {r['op']} {r['mode']}: {r['calls']} cases, "
                          f"{len(r['failures'])} failure kind(s)", flush=True)
                # cases short of --cases go to the jobs that gave every case asked of them (the others ran out
                # of distinct cases or of time), with a new seed so that they are new cases
                total = sum(r["calls"] for r in results.values())
                open_ = [r for r in results.values() if r["last_calls"] >= r["asked"]]
                if total >= args.cases or not open_:
                    break
                each = -(-(args.cases - total) * 21 // 20 // len(open_))
                jobs = [(r["spec"], r["method"], r["path"], r["mode"], each, base, deadline, args.seed + rounds)
                        for r in open_]
    finally:
        exit_status = None
        if proc is not None:
            proc.terminate()
            exit_status = proc.wait(60)
    ordered = sorted(results.values(), key=lambda r: (r["op"], r["mode"]))
    data = report(ordered, args, time.monotonic() - started, rounds, log, exit_status, stamp.finish(info))
    text = markdown(data)
    paths = stamp.write(args.out, data, text)
    print(text)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 1 if any(r["failures"] for r in ordered) else 0


if __name__ == "__main__":
    sys.exit(main())
