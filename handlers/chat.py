"""POST /v1/chat/completions"""
from __future__ import annotations

from generated.openai import (
    ChatCompletionChoice,
    ChatCompletionResponseMessage,
    ChatCompletionStreamChoice,
    ChatCompletionStreamDelta,
    CompletionUsage,
    CreateChatCompletionRequest,
    CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse,
)
from handlers import choices, common, logprobs, params, sse
from hearth.engine import api


def _message(m) -> api.ChatMessage:
    content = m.content if isinstance(m.content, str) else "".join(part.text for part in m.content or ())
    return api.ChatMessage(role="system" if m.role == "developer" else m.role, content=content)


async def create(body: dict):
    req = CreateChatCompletionRequest.model_validate(body)
    n = req.n or 1
    want_logprobs = params.chat_logprobs(req)
    sampling = params.sampling(req, n, want_logprobs)
    prompt = api.Prompt(messages=tuple(_message(m) for m in req.messages))
    generations = await choices.submit_all([prompt] * n, sampling, "messages")
    completion_id, created, model = common.new_id("chatcmpl"), common.now(), common.model_id()
    fingerprint = common.system_fingerprint()

    def chunk(chunk_choices, usage=None, with_usage_field=False) -> dict:
        fields = dict(id=completion_id, object="chat.completion.chunk", created=created, model=model,
                      system_fingerprint=fingerprint, choices=chunk_choices)
        if with_usage_field:
            fields["usage"] = usage
        return common.dump(CreateChatCompletionStreamResponse(**fields))

    def token_logprobs(tokens):
        return logprobs.chat(tokens) if want_logprobs is not None else None

    async def stream_chunks(gens, include_usage: bool):
        def choice(index, delta, finish_reason=None, lp=None):
            return ChatCompletionStreamChoice(index=index, delta=delta, logprobs=lp, finish_reason=finish_reason)

        yield chunk([choice(i, ChatCompletionStreamDelta(role="assistant", content="")) for i in range(n)],
                    with_usage_field=include_usage)
        async for d in choices.deltas(gens):
            if d.finish_reason == choices.FAILED:
                yield sse.failure_event()
                return
            delta = ChatCompletionStreamDelta(content=d.text) if d.text else ChatCompletionStreamDelta()
            lp = token_logprobs(d.tokens) if d.tokens else None
            yield chunk([choice(d.index, delta, d.finish_reason, lp)], with_usage_field=include_usage)
        if include_usage:
            yield chunk([], CompletionUsage(**choices.usage(gens, gens[0].prompt_tokens)), with_usage_field=True)

    def build_response(done: choices.Collected) -> CreateChatCompletionResponse:
        return CreateChatCompletionResponse(
            id=completion_id, object="chat.completion", created=created, model=model, system_fingerprint=fingerprint,
            choices=[
                ChatCompletionChoice(
                    index=i,
                    message=ChatCompletionResponseMessage(role="assistant", content=text, refusal=None),
                    logprobs=token_logprobs(done.tokens[i]),
                    finish_reason=reason,
                )
                for i, (text, reason) in enumerate(zip(done.texts, done.finish_reasons))
            ],
            usage=CompletionUsage(**done.usage),
        )

    prompt_tokens = generations[0].prompt_tokens
    return await sse.respond(req, generations, stream_chunks, build_response, prompt_tokens)
