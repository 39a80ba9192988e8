# Generated from openapi/openai.yaml by scripts/generate. Do not edit.

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, RootModel


class Error(BaseModel):
    message: str
    type: str = Field(..., examples=['invalid_request_error'])
    param: str | None = Field(...)
    code: str | None = Field(...)


class ErrorResponse(BaseModel):
    error: Error


class StopSequences1(RootModel[list[str]]):
    root: list[str] = Field(..., max_length=4)
    """
    Up to 4 sequences where generation stops; the stop text is not returned.
    """


class StopSequences(RootModel[str | StopSequences1 | None]):
    root: str | StopSequences1 | None
    """
    Up to 4 sequences where generation stops; the stop text is not returned.
    """


class LogitBias1(RootModel[float]):
    root: float = Field(..., ge=-100.0, le=100.0)


class LogitBias(RootModel[dict[str, LogitBias1]]):
    """
    Token id (as a string key) -> bias from -100 to 100, added to the token's logit before sampling. -100 bans the token; 100 all but forces it. Ids outside the model's vocabulary get a 422.
    """

    root: dict[str, LogitBias1]


class Metadata(RootModel[dict[str, str]]):
    """
    Accepted and ignored (nothing is stored).
    """

    root: dict[str, str]


class StreamOptions(BaseModel):
    include_usage: bool | None = None
    """
    Send one more chunk, before the final [DONE], with usage and empty choices.
    """


class ChatCompletionContentPartText(BaseModel):
    type: Literal['text']
    text: str


class ChatCompletionRequestMessage(BaseModel):
    role: Literal['system', 'developer', 'user', 'assistant']
    """
    `developer` is treated as `system`.
    """
    content: str | list[ChatCompletionContentPartText] | None = None
    name: str | None = None


class ResponseFormat(BaseModel):
    """
    Only plain text output is supported.
    """

    type: Literal['text']


class ChatCompletionResponseMessage(BaseModel):
    role: Literal['assistant']
    content: str | None = Field(...)
    refusal: str | None = Field(...)


class ChatCompletionTopLogprob(BaseModel):
    token: str
    """
    The token's text; a token that is not whole UTF-8 is written `bytes:\\\\xe6\\\\x97`.
    """
    logprob: float
    bytes: list[int] | None = Field(...)
    """
    The token's UTF-8 bytes. The bytes of `content[]`, concatenated, are the content's.
    """


class ChatCompletionTokenLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = Field(...)
    top_logprobs: list[ChatCompletionTopLogprob]
    """
    The `top_logprobs` most likely tokens at this position, most likely first.
    """


class ChatCompletionLogprobs(BaseModel):
    """
    null unless `logprobs` was true.
    """

    content: list[ChatCompletionTokenLogprob] | None = Field(...)
    refusal: list[ChatCompletionTokenLogprob] | None = Field(...)


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionStreamDelta(BaseModel):
    role: Literal['assistant'] | None = None
    content: str | None = None
    refusal: str | None = None


class ChatCompletionStreamChoice(BaseModel):
    index: int
    delta: ChatCompletionStreamDelta
    logprobs: ChatCompletionLogprobs | None
    finish_reason: Literal['stop', 'length', 'tool_calls'] | None = Field(...)


class CreateChatCompletionStreamResponse(BaseModel):
    """
    One SSE chunk of a streamed chat completion.
    """

    id: str
    object: Literal['chat.completion.chunk']
    created: int
    model: str
    system_fingerprint: str | None = None
    """
    The model file and engine configuration that served the request (`fp_` + 12 hex digits).
    """
    choices: list[ChatCompletionStreamChoice]
    usage: CompletionUsage | None = None


class Prompt(RootModel[list[str]]):
    root: list[str] = Field(..., max_length=16, min_length=1)
    """
    One prompt, or an array of prompts (one choice each, in order).
    """


class CreateCompletionRequest(BaseModel):
    model: str = Field(..., min_length=1)
    prompt: str | Prompt
    """
    One prompt, or an array of prompts (one choice each, in order).
    """
    temperature: float | None = Field(0.8, ge=0.0, le=2.0)
    top_p: float | None = Field(0.95, ge=0.0, le=1.0)
    max_tokens: int | None = Field(16, ge=-1)
    stop: StopSequences | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(0, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(0, ge=-2.0, le=2.0)
    n: int | None = Field(1, ge=1, le=1)
    """
    Only 1; send an array of prompts for several choices.
    """
    best_of: int | None = Field(None, ge=1, le=1)
    """
    Only 1 is supported.
    """
    echo: bool | None = False
    """
    Prepend the prompt to the text.
    """
    suffix: str | None = None
    """
    Not supported; must be absent or null.
    """
    logprobs: int | None = Field(None, ge=0, le=5)
    """
    Return each token's log probability and the this many most likely tokens (0: only the chosen one's): the model's own distribution (log-softmax of the raw logits, before logit_bias, penalties, temperature, top_k and top_p). Not with `echo` (422).
    """
    logit_bias: LogitBias | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    """
    Accepted and ignored.
    """


class CompletionLogprobs(BaseModel):
    """
    null unless `logprobs` was given. One entry per token of this choice's `text` (of this chunk's, when streamed); `text_offset` is the character offset of each token in the choice's whole text.
    """

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class Input(RootModel[str]):
    root: str = Field(..., min_length=1)
    """
    A string, or an array of up to 2048 strings; each must be non-empty.
    """


class Input1Item(RootModel[str]):
    root: str = Field(..., min_length=1)


class Input1(RootModel[list[Input1Item]]):
    root: list[Input1Item] = Field(..., max_length=2048, min_length=1)
    """
    A string, or an array of up to 2048 strings; each must be non-empty.
    """


class CreateEmbeddingRequest(BaseModel):
    model: str = Field(..., min_length=1)
    input: Input | Input1
    """
    A string, or an array of up to 2048 strings; each must be non-empty.
    """
    encoding_format: Literal['float', 'base64'] = 'float'
    dimensions: int | None = Field(None, ge=1)
    """
    Not supported; must be absent.
    """
    user: str | None = None


class Embedding(BaseModel):
    index: int
    object: Literal['embedding']
    embedding: list[float] | str
    """
    float32 values, or with `encoding_format` base64 their little-endian bytes in base64.
    """


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class CreateEmbeddingResponse(BaseModel):
    object: Literal['list']
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class Model(BaseModel):
    id: str
    object: Literal['model']
    created: int
    owned_by: str


class ListModelsResponse(BaseModel):
    object: Literal['list']
    data: list[Model]


class CreateChatCompletionRequest(BaseModel):
    model: str = Field(..., min_length=1)
    """
    Any non-empty string routes to the loaded model; `GET /v1/models` gives its true id.
    """
    messages: list[ChatCompletionRequestMessage] = Field(..., min_length=1)
    temperature: float | None = Field(0.8, ge=0.0, le=2.0)
    top_p: float | None = Field(0.95, ge=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=-1)
    """
    -1 (the default) generates until a stop token or the context ceiling; 0 is invalid.
    """
    max_completion_tokens: int | None = Field(None, ge=-1)
    """
    Alias of max_tokens.
    """
    stop: StopSequences | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(0, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(0, ge=-2.0, le=2.0)
    n: int | None = Field(1, ge=1, le=16)
    """
    Choices to generate; with a seed, choice i uses seed + i.
    """
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    logprobs: bool | None = None
    """
    Return each content token's log probability: the model's own distribution (log-softmax of the raw logits, before logit_bias, penalties, temperature, top_k and top_p), as OpenAI reports.
    """
    top_logprobs: int | None = Field(None, ge=0, le=20)
    """
    With `logprobs`, also the this many most likely tokens at each position.
    """
    logit_bias: LogitBias | None = None
    tools: list[dict[str, Any]] | None = Field(None, max_length=0)
    """
    Tool calling is not supported; an empty list or null is accepted.
    """
    response_format: ResponseFormat | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    """
    Accepted and ignored.
    """
    metadata: Metadata | None = None
    store: bool | None = None
    """
    Accepted and ignored (nothing is stored).
    """
    service_tier: str | None = None
    """
    Accepted and ignored.
    """


class ChatCompletionChoice(BaseModel):
    index: int
    message: ChatCompletionResponseMessage
    logprobs: ChatCompletionLogprobs | None
    finish_reason: Literal['stop', 'length', 'tool_calls']


class CreateChatCompletionResponse(BaseModel):
    id: str
    object: Literal['chat.completion']
    created: int
    model: str
    system_fingerprint: str | None = None
    """
    The model file and engine configuration that served the request (`fp_` + 12 hex digits).
    """
    choices: list[ChatCompletionChoice]
    usage: CompletionUsage


class CompletionChoice(BaseModel):
    text: str
    index: int
    logprobs: CompletionLogprobs | None
    finish_reason: Literal['stop', 'length'] | None = Field(...)
    """
    null in stream chunks before the last one of a choice.
    """


class CreateCompletionResponse(BaseModel):
    """
    A completion, and also the shape of each SSE chunk of a streamed one.
    """

    id: str
    object: Literal['text_completion']
    created: int
    model: str
    system_fingerprint: str | None = None
    """
    The model file and engine configuration that served the request (`fp_` + 12 hex digits).
    """
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None
