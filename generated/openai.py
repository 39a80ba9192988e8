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


class ChatCompletionMessageToolCallFunction(BaseModel):
    name: str
    arguments: str
    """
    The arguments as JSON text; valid against the function's parameters.
    """


class FunctionObject(BaseModel):
    name: str = Field(..., pattern='^[a-zA-Z0-9_-]{1,64}$')
    description: str | None = None
    parameters: dict[str, Any] | None = None
    """
    A JSON schema for the arguments object (omitted: no arguments). Enforced: a call's arguments always validate. A schema feature that cannot be enforced gets a 400 naming it.
    """
    strict: bool | None = None
    """
    Accepted; calls are enforced either way.
    """


class ChatCompletionNamedToolChoiceFunction(BaseModel):
    name: str


class ResponseFormatJsonSchema(BaseModel):
    name: str = Field(..., pattern='^[a-zA-Z0-9_-]{1,64}$')
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias='schema')
    """
    A JSON schema (draft 2020-12); absent means any JSON value.
    """
    strict: bool | None = None
    """
    Accepted; the schema is enforced either way.
    """


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


class ChatCompletionMessageToolCallChunkFunction(BaseModel):
    name: str | None = None
    arguments: str | None = None


class Prompt(RootModel[list[str]]):
    root: list[str] = Field(..., max_length=16, min_length=1)
    """
    One prompt, or an array of prompts (one choice each, in order).
    """


class CompletionTopLogprobs(RootModel[dict[str, float]]):
    """
    A token's alternatives, token text -> logprob; null for the prompt's first token (with `echo`).
    """

    root: dict[str, float]


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
    ttl: int | None = Field(None, ge=1)
    """
    LM Studio's idle TTL in seconds, for a model this request loads just in time: unloaded after that long without requests.
    """


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


class ChatCompletionMessageToolCall(BaseModel):
    id: str = Field(..., examples=['call_9s8xFJ1Lq2bZ0aPp3yRkT4cU'])
    type: Literal['function']
    function: ChatCompletionMessageToolCallFunction


class ChatCompletionTool(BaseModel):
    type: Literal['function']
    function: FunctionObject


class ChatCompletionNamedToolChoice(BaseModel):
    type: Literal['function']
    function: ChatCompletionNamedToolChoiceFunction


class ChatCompletionAllowedTools(BaseModel):
    mode: Literal['auto', 'required']
    tools: list[ChatCompletionNamedToolChoice]


class ResponseFormat1(BaseModel):
    """
    `text` (the default); `json_object`: the content is always a JSON object; `json_schema`: when finish_reason is `stop`, the content always validates against `json_schema.schema` (strict or not). A schema feature that cannot be enforced gets a 400 with param `response_format` naming it. `json_schema` is required with type `json_schema` (a 400 `missing_required_parameter` without it).
    """

    type: Literal['text', 'json_object']
    json_schema: ResponseFormatJsonSchema | None = None


class ResponseFormat2(BaseModel):
    """
    `text` (the default); `json_object`: the content is always a JSON object; `json_schema`: when finish_reason is `stop`, the content always validates against `json_schema.schema` (strict or not). A schema feature that cannot be enforced gets a 400 with param `response_format` naming it. `json_schema` is required with type `json_schema` (a 400 `missing_required_parameter` without it).
    """

    type: Literal['text', 'json_object', 'json_schema']
    json_schema: ResponseFormatJsonSchema


class ResponseFormat(RootModel[ResponseFormat1 | ResponseFormat2 | None]):
    root: ResponseFormat1 | ResponseFormat2 | None = None
    """
    `text` (the default); `json_object`: the content is always a JSON object; `json_schema`: when finish_reason is `stop`, the content always validates against `json_schema.schema` (strict or not). A schema feature that cannot be enforced gets a 400 with param `response_format` naming it. `json_schema` is required with type `json_schema` (a 400 `missing_required_parameter` without it).
    """


class ChatCompletionResponseMessage(BaseModel):
    role: Literal['assistant']
    content: str | None = Field(...)
    """
    null when the answer is only tool calls.
    """
    refusal: str | None = Field(...)
    reasoning_content: str | None = None
    """
    A reasoning model's <think>...</think> text, split out of content (as llama-server and LM Studio return it); absent otherwise.
    """
    tool_calls: list[ChatCompletionMessageToolCall] | None = None


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


class ChatCompletionMessageToolCallChunk(BaseModel):
    """
    A call's first chunk has id, type, function.name and empty arguments; later ones, argument fragments.
    """

    index: int
    id: str | None = None
    type: Literal['function'] | None = None
    function: ChatCompletionMessageToolCallChunkFunction | None = None


class CreateCompletionRequest(BaseModel):
    model: str = Field(..., min_length=1)
    prompt: str | Prompt
    """
    One prompt, or an array of prompts (one choice each, in order).
    """
    temperature: float | None = Field(0.8, ge=0.0, le=2.0)
    top_p: float | None = Field(0.95, ge=0.0, le=1.0)
    max_tokens: int | None = Field(16, ge=-1)
    """
    Tokens to generate at most (-1: until a stop token or the context ceiling; 0: none, the prompt only, e.g. with `echo` and `logprobs` to score it).
    """
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
    Prepend the prompt to the text; with `logprobs`, the prompt's tokens come first in `logprobs` too, each with its logprob given the tokens before it (the first token's is null, as OpenAI sends it). Such a prompt is evaluated whole: nothing is reused from the prefix cache.
    """
    suffix: str | None = None
    """
    Not supported; must be absent or null.
    """
    logprobs: int | None = Field(None, ge=0, le=5)
    """
    Return each token's log probability and the this many most likely tokens (0: only the chosen one's): the model's own distribution (log-softmax of the raw logits, before logit_bias, penalties, temperature, top_k and top_p). With `echo`, the prompt's tokens too.
    """
    logit_bias: LogitBias | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    """
    Accepted and ignored.
    """
    ttl: int | None = Field(None, ge=1)
    """
    LM Studio's idle TTL in seconds, for a model this request loads just in time: unloaded after that long without requests.
    """
    response_format: ResponseFormat | None = None
    """
    An extension of OpenAI's legacy completions (llama-server and LM Studio accept it here too): `json_object` or `json_schema` constrain the text after the prompt exactly as on chat completions (not with `stop`; an unenforceable schema feature is a 400 naming it).
    """


class CompletionLogprobs(BaseModel):
    """
    null unless `logprobs` was given. One entry per token of this choice's `text` (of this chunk's, when streamed); `text_offset` is the character offset of each token in the choice's whole text. With `echo`, the prompt's tokens come first; the prompt's first token has no logprob (null in `token_logprobs` and `top_logprobs`, as OpenAI sends it; OpenAI's published schema omits that null).
    """

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[CompletionTopLogprobs | None]
    """
    Per token, the `logprobs` most likely tokens and the chosen one (up to logprobs+1 entries).
    """
    text_offset: list[int]


class ChatCompletionRequestMessage(BaseModel):
    role: Literal['system', 'developer', 'user', 'assistant', 'tool']
    """
    `developer` is treated as `system`. A `tool` message answers the call `tool_call_id`.
    """
    content: str | list[ChatCompletionContentPartText] | None = None
    name: str | None = None
    tool_calls: list[ChatCompletionMessageToolCall] | None = None
    """
    An assistant message's calls, as a previous answer returned them.
    """
    tool_call_id: str | None = None
    """
    Of a `tool` message: the call it answers.
    """


class ChatCompletionAllowedToolsChoice(BaseModel):
    type: Literal['allowed_tools']
    allowed_tools: ChatCompletionAllowedTools


class ChatCompletionStreamDelta(BaseModel):
    role: Literal['assistant'] | None = None
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    """
    A piece of a reasoning model's <think> text.
    """
    tool_calls: list[ChatCompletionMessageToolCallChunk] | None = None


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


class ChatCompletionToolChoiceOption(
    RootModel[
        Literal['none', 'auto', 'required']
        | ChatCompletionNamedToolChoice
        | ChatCompletionAllowedToolsChoice
    ]
):
    root: (
        Literal['none', 'auto', 'required']
        | ChatCompletionNamedToolChoice
        | ChatCompletionAllowedToolsChoice
    )
    """
    `none`: no calls. `auto` (the default with tools): text or calls. `required`: one or more calls. A named function: calls to that function only. `allowed_tools`: `auto` or `required` over a subset.
    """


class CreateChatCompletionRequest(BaseModel):
    model: str = Field(..., min_length=1)
    """
    A loaded instance id (`GET /v1/models`) or a model on disk (`GET /api/v1/models`, loaded just in time); any other string routes to the chat model loaded most recently.
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
    tools: list[ChatCompletionTool] | None = Field(None, max_length=128)
    """
    Functions the model may call (see `tool_choice`).
    """
    tool_choice: ChatCompletionToolChoiceOption | None = None
    parallel_tool_calls: bool | None = True
    """
    false: at most one call per answer. true: at most 16 calls per answer, and a call whose name and arguments repeat an earlier call of the same answer verbatim ends the answer there (it is not reported), so an answer that must call tools always ends with complete calls.
    """
    response_format: ResponseFormat | None = None
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
    ttl: int | None = Field(None, ge=1)
    """
    LM Studio's idle TTL in seconds, for a model this request loads just in time: unloaded after that long without requests.
    """
