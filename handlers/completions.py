"""POST /v1/completions"""
from __future__ import annotations

from generated.openai import CompletionChoice, CompletionUsage, CreateCompletionRequest, CreateCompletionResponse
from handlers import choices, common, logprobs, params, sse
from hearth.engine import api
from hearth.errors import invalid_value


async def create(body: dict):
    req = CreateCompletionRequest.model_validate(body)
    if req.suffix:
        raise invalid_value("suffix", "suffix is not supported by this server.")
    if req.echo and req.logprobs is not None:
        raise invalid_value("logprobs", "logprobs together with echo (the prompt's logprobs) is not supported.")
    texts = [req.prompt] if isinstance(req.prompt, str) else req.prompt.root
    with common.use_model(req) as served:
        sampling = params.sampling(req, len(texts), req.logprobs, served.info)
        if req.seed is None:  # one prompt per choice: without a seed, each samples on its own
            sampling = [sampling[0]] * len(texts)
        generations = await choices.submit_all(served, [api.Prompt(text=t) for t in texts], sampling, "prompt")
    completion_id, created, model = common.new_id("cmpl"), common.now(), served.id
    fingerprint = common.system_fingerprint(served.info)
    echoed = texts if req.echo else [""] * len(texts)
    offsets = [logprobs.CompletionOffsets() for _ in texts]

    def response(response_choices, usage=None, with_usage_field=True) -> CreateCompletionResponse:
        fields = dict(id=completion_id, object="text_completion", created=created, model=model,
                      system_fingerprint=fingerprint, choices=response_choices)
        if with_usage_field:
            fields["usage"] = usage
        return CreateCompletionResponse(**fields)

    def choice(index, text, finish_reason=None, tokens=()) -> CompletionChoice:
        lp = offsets[index].logprobs(tokens) if req.logprobs is not None else None
        return CompletionChoice(text=text, index=index, logprobs=lp, finish_reason=finish_reason)

    async def stream_chunks(gens, include_usage: bool):
        templates: dict[int, sse.TextTemplate] = {}

        def text_event(index: int, text: str) -> bytes:
            """A plain text chunk of choice `index` (no logprobs, not its last): see sse.TextTemplate."""
            t = templates.get(index)
            if t is None:
                chunk = common.dump(response([choice(index, sse.TextTemplate.MARK)], with_usage_field=include_usage))
                t = templates[index] = sse.TextTemplate(chunk)
            return t.fill(text)

        for i, text in enumerate(echoed):
            if text:
                yield common.dump(response([choice(i, text)], with_usage_field=include_usage))
        async for d in choices.deltas(gens):
            if d.finish_reason == choices.FAILED:
                yield sse.failure_event(d.error)
                return
            if d.finish_reason is None and req.logprobs is None:
                yield text_event(d.index, d.text)
            else:
                yield common.dump(response([choice(d.index, d.text, d.finish_reason, d.tokens)],
                                           with_usage_field=include_usage))
        if include_usage:
            yield common.dump(response([], CompletionUsage(**choices.usage(gens))))

    def build_response(done: choices.Collected) -> CreateCompletionResponse:
        result = [choice(i, echoed[i] + text, reason, done.tokens[i])
                  for i, (text, reason) in enumerate(zip(done.texts, done.finish_reasons))]
        return response(result, CompletionUsage(**done.usage))

    return await sse.respond(req, generations, stream_chunks, build_response)
