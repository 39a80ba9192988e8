"""SSE text events from a template are byte for byte the events the generated models dump."""
import pytest

from generated.openai import (ChatCompletionStreamChoice, ChatCompletionStreamDelta, CompletionChoice,
                              CreateChatCompletionStreamResponse, CreateCompletionResponse)
from handlers.shared import common, sse

TEXTS = [" word", "", 'quote " and \\ backslash', "line\nbreak\ttab", "caf\u00e9 \u4e2d\u6587 \U0001f600",
         "\x00\x1f control", "</script>", "\u2028\u2029"]


def completion(text, usage_field):
    fields = dict(id="cmpl-1", object="text_completion", created=1, model="m", system_fingerprint="fp",
                  choices=[CompletionChoice(text=text, index=1, logprobs=None, finish_reason=None)])
    if usage_field:
        fields["usage"] = None
    return common.dump(CreateCompletionResponse(**fields))


def chat(text, usage_field):
    fields = dict(id="chatcmpl-1", object="chat.completion.chunk", created=1, model="m", system_fingerprint="fp",
                  choices=[ChatCompletionStreamChoice(index=0, delta=ChatCompletionStreamDelta(content=text),
                                                      logprobs=None, finish_reason=None)])
    if usage_field:
        fields["usage"] = None
    return common.dump(CreateChatCompletionStreamResponse(**fields))


async def _events(chunks):
    async def gen():
        for c in chunks:
            yield c

    return [e async for e in sse.EventStream._encode(gen())]


@pytest.mark.parametrize("make", [completion, chat])
@pytest.mark.parametrize("usage_field", [False, True])
def test_a_filled_template_is_the_dumped_chunk(make, usage_field):
    import asyncio

    template = sse.TextTemplate(make(sse.TextTemplate.MARK, usage_field))
    filled = [template.fill(t) for t in TEXTS]
    dumped = asyncio.run(_events([make(t, usage_field) for t in TEXTS]))[:-1]  # without [DONE]
    assert filled == dumped
    assert asyncio.run(_events(filled))[:-1] == filled  # pre-encoded events pass through as they are


def test_a_chunk_without_the_marker_is_refused():
    with pytest.raises(ValueError):
        sse.TextTemplate(completion("no marker here", False))


@pytest.mark.parametrize("make", [completion, chat])
def test_every_event_is_one_line_however_a_client_splits_lines(make):
    """SSE ends lines at CR and LF; str.splitlines() and httpx's iter_lines() also at U+0085, U+2028 and
    U+2029, which JSON may leave raw. Escaped, an event reads the same either way (the fuzz found the cut)."""
    import asyncio
    import json

    text = "a\x85b\u2028c\u2029d\ne"
    for event in (sse.TextTemplate(make(sse.TextTemplate.MARK, False)).fill(text),
                  asyncio.run(_events([make(text, False)]))[0]):
        lines = [line for line in event.decode().splitlines() if line]
        assert len(lines) == 1 and lines[0].startswith("data: "), lines
        choice = json.loads(lines[0][6:])["choices"][0]
        assert choice.get("text", choice.get("delta", {}).get("content")) == text
