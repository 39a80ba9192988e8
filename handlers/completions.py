"""POST /v1/completions

`echo` with `logprobs` (what lm-evaluation-harness's loglikelihood sends, with max_tokens 0 or 1): the
prompt's tokens lead the choice's logprobs, each with its logprob given the tokens before it, the first
with none (null), as OpenAI answers it. `response_format` extends OpenAI's legacy completions (as
llama-server and LM Studio do): the text after the prompt is constrained as on chat completions.
"""
from __future__ import annotations

from dataclasses import replace

from generated.openai import CompletionChoice, CompletionUsage, CreateCompletionRequest, CreateCompletionResponse
from handlers.shared import choices, common, logprobs, params, sse, structured
from hearth.engine import api
from hearth.errors import invalid_value
from hearth.models.request import FAILED


async def create(body: dict):
    req = CreateCompletionRequest.model_validate(body)
    if req.suffix:
        raise invalid_value("suffix", "suffix is not supported by this server.")
    texts = [req.prompt] if isinstance(req.prompt, str) else req.prompt.root
    scored = bool(req.echo) and req.logprobs is not None  # the prompt's own logprobs lead the choice's
    constraint = await structured.response_format(body)
    with common.request(req.model, ttl=req.ttl) as request:
        sampling = params.sampling(req, len(texts), req.logprobs, request.info, zero_tokens=True)
        if scored or constraint is not None:
            sampling = [replace(p, prompt_logprobs=req.logprobs if scored else None, constraint=constraint)
                        for p in sampling]
        if req.seed is None:  # one prompt per choice: without a seed, each samples on its own
            sampling = [sampling[0]] * len(texts)
        await common.submit(request, [api.Prompt(text=t) for t in texts], sampling, "prompt")
    completion_id, created, model = common.new_id("cmpl"), common.now(), request.id
    fingerprint = common.system_fingerprint(request.info)
    echoed = texts if req.echo else [""] * len(texts)
    offsets = [logprobs.CompletionOffsets() for _ in texts]

    def prompt_tokens(index: int) -> tuple[api.TokenOut, ...]:
        """The prompt's tokens with their logprobs (echo + logprobs); none if it ended before its prompt was
        evaluated (--request-timeout)."""
        return (request.generations[index].prompt_logprobs or ()) if scored else ()

    def response(response_choices, usage=None, with_usage_field=True) -> CreateCompletionResponse:
        fields = dict(id=completion_id, object="text_completion", created=created, model=model,
                      system_fingerprint=fingerprint, choices=response_choices)
        if with_usage_field:
            fields["usage"] = usage
        return CreateCompletionResponse(**fields)

    def choice(index, text, finish_reason=None, tokens=()) -> CompletionChoice:
        lp = offsets[index].logprobs(tokens) if req.logprobs is not None else None
        return CompletionChoice(text=text, index=index, logprobs=lp, finish_reason=finish_reason)

    async def stream_chunks(include_usage: bool):
        templates: dict[int, sse.TextTemplate] = {}

        def text_event(index: int, text: str) -> bytes:
            """A plain text chunk of choice `index` (no logprobs, not its last): see sse.TextTemplate."""
            t = templates.get(index)
            if t is None:
                chunk = common.dump(response([choice(index, sse.TextTemplate.MARK)], with_usage_field=include_usage))
                t = templates[index] = sse.TextTemplate(chunk)
            return t.fill(text)

        # the echo leads each choice; with logprobs it waits for the prompt's (known by its first Delta or end)
        unechoed = {i for i, text in enumerate(echoed) if text} if scored else set()
        for i, text in enumerate(echoed):
            if text and not scored:
                yield common.dump(response([choice(i, text)], with_usage_field=include_usage))
        async for d in request.deltas():
            if d.finish_reason == FAILED:
                yield sse.failure_event(d.error)
                return
            if d.index in unechoed:
                unechoed.discard(d.index)
                yield common.dump(response([choice(d.index, echoed[d.index], None, prompt_tokens(d.index))],
                                           with_usage_field=include_usage))
            if d.finish_reason is None and req.logprobs is None:
                yield text_event(d.index, d.text)
            else:
                yield common.dump(response([choice(d.index, d.text, d.finish_reason, d.tokens)],
                                           with_usage_field=include_usage))
        if include_usage:
            yield common.dump(response([], CompletionUsage(**request.usage())))

    def build_response(done: choices.Collected) -> CreateCompletionResponse:
        result = [choice(i, echoed[i] + text, reason, (*prompt_tokens(i), *done.tokens[i]))
                  for i, (text, reason) in enumerate(zip(done.texts, done.finish_reasons))]
        return response(result, CompletionUsage(**done.usage))

    return await sse.respond(req, request, stream_chunks, build_response)
