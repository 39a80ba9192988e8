# Generated from openapi/anthropic.yaml by scripts/generate. Do not edit.

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, RootModel


class ErrorObject(BaseModel):
    type: Literal[
        'invalid_request_error',
        'authentication_error',
        'permission_error',
        'not_found_error',
        'request_too_large',
        'rate_limit_error',
        'api_error',
        'overloaded_error',
    ]
    message: str


class Metadata(BaseModel):
    """
    Accepted and ignored.
    """

    user_id: str | None = None


class Thinking(BaseModel):
    """
    Accepted; a model that writes <think>...</think> returns that text as a thinking block.
    """

    type: str | None = None
    budget_tokens: int | None = None


class Thinking1(BaseModel):
    type: str | None = None
    budget_tokens: int | None = None


class JSONOutputFormat(BaseModel):
    type: Literal['json_schema']
    schema_: dict[str, Any] = Field(..., alias='schema')


class ToolResultBlockParam(BaseModel):
    """
    A block of a tool result (text; images and documents get a 400).
    """

    type: Literal['text', 'image', 'document', 'search_result']
    text: str | None = None
    cache_control: dict[str, Any] | None = None


class TextBlockParam(BaseModel):
    type: Literal['text']
    text: str
    cache_control: dict[str, Any] | None = None
    """
    Accepted and ignored.
    """


class ToolParam(BaseModel):
    """
    A client tool ({name, description, input_schema}); a tool with another `type` (a server tool) is accepted and left out.
    """

    type: str | None = Field(None, examples=['custom'])
    name: str = Field(..., max_length=128, min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    """
    JSON schema of the input object; enforced.
    """
    cache_control: dict[str, Any] | None = None


class ToolChoice(BaseModel):
    type: Literal['auto', 'any', 'tool', 'none']
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class TextBlock(BaseModel):
    type: Literal['text']
    text: str


class ToolUseBlock(BaseModel):
    type: Literal['tool_use']
    id: str
    name: str
    input: dict[str, Any]
    """
    Valid against the tool's input_schema.
    """


class ThinkingBlock(BaseModel):
    type: Literal['thinking']
    thinking: str
    signature: str


class Usage(BaseModel):
    """
    As Anthropic counts: `input_tokens` excludes the prompt tokens the prefix cache supplied (`cache_read_input_tokens`).
    """

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class MessageTokensCount(BaseModel):
    input_tokens: int


class BlockDelta(BaseModel):
    """
    text_delta (text), input_json_delta (partial_json), thinking_delta (thinking), signature_delta (signature).
    """

    type: Literal['text_delta', 'input_json_delta', 'thinking_delta', 'signature_delta']
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    signature: str | None = None


class ContentBlockStopEvent(BaseModel):
    type: Literal['content_block_stop']
    index: int


class MessageDelta(BaseModel):
    stop_reason: (
        Literal['end_turn', 'max_tokens', 'stop_sequence', 'tool_use'] | None
    ) = Field(...)
    stop_sequence: str | None = Field(...)


class MessageDeltaUsage(BaseModel):
    input_tokens: int | None = None
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class MessageStopEvent(BaseModel):
    type: Literal['message_stop']


class PingEvent(BaseModel):
    type: Literal['ping']


class ErrorResponse(BaseModel):
    type: Literal['error']
    error: ErrorObject


class OutputConfig(BaseModel):
    """
    `format` (json_schema): the text answer is a value of `schema`, enforced (structured outputs); `effort` is accepted and ignored.
    """

    effort: str | None = None
    format: JSONOutputFormat | None = None


class ToolResultContent(RootModel[str | list[ToolResultBlockParam]]):
    root: str | list[ToolResultBlockParam]


class SystemParam(RootModel[str | list[TextBlockParam]]):
    root: str | list[TextBlockParam]


class ContentBlock(RootModel[TextBlock | ToolUseBlock | ThinkingBlock]):
    root: TextBlock | ToolUseBlock | ThinkingBlock = Field(..., discriminator='type')


class ContentBlockStartEvent(BaseModel):
    type: Literal['content_block_start']
    index: int
    content_block: ContentBlock


class ContentBlockDeltaEvent(BaseModel):
    type: Literal['content_block_delta']
    index: int
    delta: BlockDelta


class MessageDeltaEvent(BaseModel):
    type: Literal['message_delta']
    delta: MessageDelta
    usage: MessageDeltaUsage


class ContentBlockParam(BaseModel):
    """
    `text`; `tool_use` (an earlier answer's call: id, name, input); `tool_result` (tool_use_id, content, is_error); `thinking` / `redacted_thinking` (not shown to the model again); `image` and `document` get a 400 (no vision model).
    """

    type: Literal[
        'text',
        'image',
        'document',
        'tool_use',
        'tool_result',
        'thinking',
        'redacted_thinking',
        'server_tool_use',
        'web_search_tool_result',
        'web_fetch_tool_result',
        'code_execution_tool_result',
        'container_upload',
        'search_result',
    ] = Field(..., examples=['text'])
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: ToolResultContent | None = None
    is_error: bool | None = None
    thinking: str | None = None
    signature: str | None = None
    cache_control: dict[str, Any] | None = None
    """
    Accepted and ignored.
    """


class Message(BaseModel):
    id: str = Field(..., examples=['msg_0123456789abcdef0123456789abcdef'])
    type: Literal['message']
    role: Literal['assistant']
    content: list[ContentBlock]
    model: str
    stop_reason: (
        Literal['end_turn', 'max_tokens', 'stop_sequence', 'tool_use'] | None
    ) = Field(...)
    stop_sequence: str | None = Field(...)
    usage: Usage


class MessageStartEvent(BaseModel):
    type: Literal['message_start']
    message: Message


class MessageContent(RootModel[str | list[ContentBlockParam]]):
    root: str | list[ContentBlockParam]


class MessageParam(BaseModel):
    role: Literal['user', 'assistant', 'system']
    """
    `system` inside `messages` (Claude Code sends one) is read as a system message.
    """
    content: MessageContent


class CreateMessageRequest(BaseModel):
    model: str = Field(..., min_length=1)
    """
    A loaded instance id, a model on disk (loaded just in time), or any other string (the chat model loaded most recently).
    """
    messages: list[MessageParam] = Field(..., min_length=1)
    max_tokens: int = Field(..., ge=1)
    """
    Generated tokens at most; more than the model's context (or the server's per-request budget) is clamped to it.
    """
    system: SystemParam | None = None
    stop_sequences: list[str] | None = Field(None, max_length=16)
    stream: bool | None = None
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0)
    """
    Accepted and ignored (top_p and temperature apply).
    """
    tools: list[ToolParam] | None = Field(None, max_length=128)
    tool_choice: ToolChoice | None = None
    metadata: Metadata | None = None
    """
    Accepted and ignored.
    """
    thinking: Thinking | None = None
    """
    Accepted; a model that writes <think>...</think> returns that text as a thinking block.
    """
    output_config: OutputConfig | None = None
    service_tier: str | None = None
    """
    Accepted and ignored.
    """


class CountTokensRequest(BaseModel):
    model: str = Field(..., min_length=1)
    messages: list[MessageParam] = Field(..., min_length=1)
    system: SystemParam | None = None
    tools: list[ToolParam] | None = Field(None, max_length=128)
    tool_choice: ToolChoice | None = None
    output_config: OutputConfig | None = None
    thinking: Thinking1 | None = None
