"""POST /v1/completions"""
from __future__ import annotations

from generated.openai import CompletionChoice, CompletionUsage, CreateCompletionRequest, CreateCompletionResponse
from handlers import common
from hearth.engine import api
from hearth.errors import invalid_value


async def create(body: dict):
    req = CreateCompletionRequest.model_validate(body)
    if req.suffix:
        raise invalid_value("suffix", "suffix is not supported by this server.")
    texts = [req.prompt] if isinstance(req.prompt, str) else req.prompt.root
    with common.use_model(req) as served:
        params = common.sampling(req, len(texts), served.info)
        if req.seed is None:  # one prompt per choice: without a seed, each samples on its own
            params = [params[0]] * len(texts)
        generations = await common.submit_all(served, [api.Prompt(text=t) for t in texts], params, "prompt")
    completion_id, created, model = common.new_id("cmpl"), common.now(), served.id
    echoed = texts if req.echo else [""] * len(texts)

    def response(choices, usage=None, with_usage_field=True) -> CreateCompletionResponse:
        fields = dict(id=completion_id, object="text_completion", created=created, model=model,
                      system_fingerprint=None, choices=choices)
        if with_usage_field:
            fields["usage"] = usage
        return CreateCompletionResponse(**fields)

    def choice(index, text, finish_reason=None) -> CompletionChoice:
        return CompletionChoice(text=text, index=index, logprobs=None, finish_reason=finish_reason)

    async def stream_chunks(gens, include_usage: bool):
        for i, text in enumerate(echoed):
            if text:
                yield common.dump(response([choice(i, text)], with_usage_field=include_usage))
        async for d in common.deltas(gens):
            if d.finish_reason == common.FAILED:
                yield common.failure_event()
                return
            yield common.dump(response([choice(d.index, d.text, d.finish_reason)], with_usage_field=include_usage))
        if include_usage:
            yield common.dump(response([], CompletionUsage(**common.usage(gens))))

    def build_response(done: common.Collected) -> CreateCompletionResponse:
        choices = [choice(i, echoed[i] + text, reason)
                   for i, (text, reason) in enumerate(zip(done.texts, done.finish_reasons))]
        return response(choices, CompletionUsage(**done.usage))

    return await common.respond(req, generations, stream_chunks, build_response)
