# Generated from openapi/responses.yaml by scripts/generate. Do not edit.

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


class DeleteNotFound(BaseModel):
    error: Error
    message: str
    type: str
    param: str | None = Field(...)
    code: str | None = Field(...)


class StreamOptions(BaseModel):
    include_obfuscation: bool | None = None
    """
    Accepted; Hearth adds no obfuscation.
    """


class InputTokensResponse(BaseModel):
    object: Literal['response.input_tokens']
    input_tokens: int


class ResponseContentPart(BaseModel):
    """
    `input_text` / `output_text` / `summary_text` / `reasoning_text` parts carry `text`; images and files get a 400 (no vision model).
    """

    type: Literal[
        'input_text',
        'output_text',
        'text',
        'summary_text',
        'reasoning_text',
        'refusal',
        'input_image',
        'input_file',
        'input_audio',
    ] = Field(..., examples=['input_text'])
    text: str | None = None
    refusal: str | None = None


class CustomToolFormat(BaseModel):
    """
    `text` (the default): free text. `grammar`: text the Lark or regex `definition` accepts, enforced.
    """

    type: Literal['text', 'grammar']
    syntax: Literal['lark', 'regex'] | None = None
    definition: str | None = None


class ResponseToolChoiceObject(BaseModel):
    type: str = Field(..., examples=['function'])
    name: str | None = None
    mode: Literal['auto', 'required'] | None = None
    tools: list[dict[str, Any]] | None = None


class ResponseTextFormat1(BaseModel):
    """
    `text`; `json_object`: a JSON object; `json_schema`: a value of `schema` (strict or not), enforced; `name` and `schema` are required with it (a 400 `missing_required_parameter` without them).
    """

    type: Literal['text', 'json_object']
    name: str | None = Field(None, pattern='^[a-zA-Z0-9_-]{1,64}$')
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias='schema')
    strict: bool | None = None


class ResponseTextFormat2(BaseModel):
    """
    `text`; `json_object`: a JSON object; `json_schema`: a value of `schema` (strict or not), enforced; `name` and `schema` are required with it (a 400 `missing_required_parameter` without them).
    """

    type: Literal['text', 'json_object', 'json_schema']
    name: str = Field(..., pattern='^[a-zA-Z0-9_-]{1,64}$')
    description: str | None = None
    schema_: dict[str, Any] = Field(..., alias='schema')
    strict: bool | None = None


class ResponseTextFormat(RootModel[ResponseTextFormat1 | ResponseTextFormat2]):
    root: ResponseTextFormat1 | ResponseTextFormat2
    """
    `text`; `json_object`: a JSON object; `json_schema`: a value of `schema` (strict or not), enforced; `name` and `schema` are required with it (a 400 `missing_required_parameter` without them).
    """


class ResponseReasoningParam(BaseModel):
    """
    Accepted; a model that writes <think>...</think> has that text returned as a reasoning item.
    """

    effort: (
        Literal['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'] | None
    ) = None
    summary: Literal['auto', 'concise', 'detailed'] | None = None


class Metadata1(RootModel[str]):
    root: str = Field(..., max_length=512)


class Metadata(RootModel[dict[str, Metadata1]]):
    """
    Up to 16 string pairs, stored and returned with the response.
    """

    root: dict[str, Metadata1] = Field(..., max_length=16)


class ResponseTextConfig(BaseModel):
    format: dict[str, Any] | None = None
    verbosity: Literal['low', 'medium', 'high'] | None = None


class ResponseError(BaseModel):
    code: Literal['server_error', 'rate_limit_exceeded', 'invalid_prompt']
    message: str


class ResponseIncompleteDetails(BaseModel):
    reason: Literal['max_output_tokens', 'content_filter'] | None = None


class ResponseInputTokensDetails(BaseModel):
    cached_tokens: int
    """
    Prompt tokens the prefix cache supplied.
    """
    cache_write_tokens: int


class ResponseOutputTokensDetails(BaseModel):
    reasoning_tokens: int


class ResponseTopLogProb(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class ResponseFunctionToolCall(BaseModel):
    type: Literal['function_call']
    id: str
    call_id: str
    name: str
    namespace: str | None = None
    """
    The namespace tool the function belongs to, if any.
    """
    arguments: str
    """
    JSON text; valid against the function's parameters.
    """
    status: Literal['in_progress', 'completed', 'incomplete']


class ResponseCustomToolCall(BaseModel):
    type: Literal['custom_tool_call']
    id: str
    call_id: str
    name: str
    namespace: str | None = None
    input: str
    """
    Text the tool's grammar accepts (when it has one).
    """
    status: Literal['in_progress', 'completed', 'incomplete'] | None = None


class ResponseSummaryText(BaseModel):
    type: Literal['summary_text']
    text: str


class ResponseReasoningText(BaseModel):
    type: Literal['reasoning_text']
    text: str


class DeletedResponse(BaseModel):
    id: str
    object: Literal['response']
    deleted: bool


class ResponseItemList(BaseModel):
    object: Literal['list']
    data: list[dict[str, Any]]
    has_more: bool
    first_id: str | None = Field(...)
    last_id: str | None = Field(...)


class ResponseContentPartEvent(BaseModel):
    """
    response.content_part.added / .done, and response.reasoning_summary_part.added / .done.
    """

    type: Literal['response.content_part.added', 'response.content_part.done']
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: dict[str, Any]


class ResponseReasoningTextEvent(BaseModel):
    """
    response.reasoning_text.delta (with `delta`) and response.reasoning_text.done (with `text`).
    """

    type: Literal['response.reasoning_text.delta', 'response.reasoning_text.done']
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str | None = None
    text: str | None = None


class ResponseCallDeltaEvent(BaseModel):
    """
    response.function_call_arguments.delta and response.custom_tool_call_input.delta.
    """

    type: Literal[
        'response.function_call_arguments.delta',
        'response.custom_tool_call_input.delta',
    ]
    sequence_number: int
    item_id: str
    output_index: int
    delta: str


class ResponseFunctionCallArgumentsDoneEvent(BaseModel):
    type: Literal['response.function_call_arguments.done']
    sequence_number: int
    item_id: str
    output_index: int
    name: str
    arguments: str


class ResponseCustomToolCallInputDoneEvent(BaseModel):
    type: Literal['response.custom_tool_call_input.done']
    sequence_number: int
    item_id: str
    output_index: int
    input: str


class ResponseMessageContent(RootModel[str | list[ResponseContentPart]]):
    root: str | list[ResponseContentPart]


class ResponseToolOutput(RootModel[str | list[ResponseContentPart]]):
    root: str | list[ResponseContentPart]


class ResponseNamespaceTool(BaseModel):
    """
    A function or custom tool inside a namespace (a separate schema: specs may not recurse).
    """

    type: Literal['function', 'custom']
    name: str | None = Field(None, max_length=128, min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    format: CustomToolFormat | None = None


class ResponseToolChoice(
    RootModel[Literal['none', 'auto', 'required'] | ResponseToolChoiceObject]
):
    root: Literal['none', 'auto', 'required'] | ResponseToolChoiceObject
    """
    `none`, `auto` (the default with tools), `required`; {type: function|custom, name}; {type: allowed_tools, mode, tools}; a built-in tool type (nothing Hearth can call: a 400).
    """


class ResponseTextParam(BaseModel):
    format: ResponseTextFormat | None = None
    verbosity: Literal['low', 'medium', 'high'] | None = None
    """
    Accepted and ignored.
    """


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: ResponseInputTokensDetails
    output_tokens: int
    output_tokens_details: ResponseOutputTokensDetails
    total_tokens: int


class ResponseLogProb(BaseModel):
    token: str
    logprob: float
    bytes: list[int]
    top_logprobs: list[ResponseTopLogProb]


class ResponseReasoningItem(BaseModel):
    type: Literal['reasoning']
    id: str
    summary: list[ResponseSummaryText]
    content: list[ResponseReasoningText] | None = None
    encrypted_content: str | None = None
    status: Literal['in_progress', 'completed', 'incomplete'] | None = None


class ResponseTextDeltaEvent(BaseModel):
    type: Literal['response.output_text.delta']
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[ResponseLogProb]


class ResponseTextDoneEvent(BaseModel):
    type: Literal['response.output_text.done']
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[ResponseLogProb]


class ResponseInputItem(BaseModel):
    """
    One input item. A message ({role, content}, `type` message or absent); a `function_call` or `custom_tool_call` an earlier response made; its `function_call_output` / `custom_tool_call_output`; a `reasoning` item (its text is not shown to the model again); an `item_reference` to a stored item. Items of built-in tools Hearth does not run (`web_search_call`, ...) are accepted and left out.
    """

    type: (
        Literal[
            'message',
            'function_call',
            'function_call_output',
            'custom_tool_call',
            'custom_tool_call_output',
            'reasoning',
            'item_reference',
            'web_search_call',
            'file_search_call',
            'image_generation_call',
            'code_interpreter_call',
            'computer_call',
            'computer_call_output',
            'local_shell_call',
            'local_shell_call_output',
            'shell_call',
            'shell_call_output',
            'apply_patch_call',
            'apply_patch_call_output',
            'mcp_call',
            'mcp_list_tools',
            'mcp_approval_request',
            'mcp_approval_response',
            'tool_search_call',
            'tool_search_output',
            'compaction',
        ]
        | None
    ) = Field(None, examples=['message'])
    id: str | None = None
    role: Literal['user', 'assistant', 'system', 'developer'] | None = None
    content: ResponseMessageContent | None = None
    status: str | None = None
    call_id: str | None = None
    name: str | None = None
    namespace: str | None = None
    arguments: str | None = None
    input: str | None = None
    output: ResponseToolOutput | None = None
    summary: list[ResponseContentPart] | None = None
    encrypted_content: str | None = None


class ResponseTool(BaseModel):
    """
    `function` ({name, description, parameters, strict}), `custom` ({name, description, format}), `namespace` ({name, description, tools}); any other type is a built-in tool, accepted and left out.
    """

    type: str = Field(..., examples=['function'])
    name: str | None = Field(None, max_length=128, min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    """
    JSON schema of the arguments object; enforced.
    """
    strict: bool | None = None
    """
    Accepted; arguments are enforced either way.
    """
    format: CustomToolFormat | None = None
    tools: list[ResponseNamespaceTool] | None = None
    """
    A namespace's tools (function or custom).
    """


class ResponseOutputText(BaseModel):
    type: Literal['output_text']
    text: str
    annotations: list[dict[str, Any]]
    logprobs: list[ResponseLogProb] | None = None


class ResponseInput(RootModel[str | list[ResponseInputItem]]):
    root: str | list[ResponseInputItem]
    """
    A user message as a string, or a list of input items (messages, function calls and their outputs, ...).
    """


class ResponseOutputMessage(BaseModel):
    id: str
    type: Literal['message']
    role: Literal['assistant']
    status: Literal['in_progress', 'completed', 'incomplete']
    content: list[ResponseOutputText]


class CreateResponseRequest(BaseModel):
    """
    `input` is required here (OpenAI's allows a stored prompt or a conversation instead; Hearth has neither).
    """

    model: str = Field(..., min_length=1)
    """
    A loaded instance id, a model on disk (loaded just in time), or any other string (the chat model loaded most recently).
    """
    input: ResponseInput
    instructions: str | None = None
    """
    A system message placed first; not carried over by `previous_response_id`.
    """
    previous_response_id: str | None = None
    """
    A stored response to continue: its input and output come before this request's input.
    """
    max_output_tokens: int | None = Field(None, ge=1)
    """
    Generated tokens at most (absent: until the model stops or the context ends). Past it the response is `incomplete`.
    """
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    """
    With `include` ["message.output_text.logprobs"], this many alternatives per output token.
    """
    include: list[str] | None = None
    """
    `message.output_text.logprobs` returns logprobs on output_text; `reasoning.encrypted_content` is accepted (reasoning is returned as plain text); other values are accepted and ignored.
    """
    tools: list[ResponseTool] | None = Field(None, max_length=128)
    tool_choice: ResponseToolChoice | None = None
    parallel_tool_calls: bool | None = None
    """
    false allows at most one call per response.
    """
    max_tool_calls: int | None = Field(None, ge=1)
    """
    Accepted; bounds built-in tool calls, which Hearth does not run.
    """
    text: ResponseTextParam | None = None
    reasoning: ResponseReasoningParam | None = None
    metadata: Metadata | None = None
    truncation: Literal['auto', 'disabled'] | None = None
    """
    `disabled` (the default): an input over the context is a 400. `auto`: the oldest input items are dropped until it fits.
    """
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    store: bool | None = None
    """
    Keep the response for later retrieval and `previous_response_id` (default true).
    """
    background: bool | None = None
    """
    Only false is supported.
    """
    conversation: Any | None = None
    """
    Not supported (use previous_response_id); a non-null value gets a 400.
    """
    user: str | None = None
    """
    Accepted and ignored.
    """
    service_tier: str | None = None
    """
    Accepted and ignored.
    """
    prompt_cache_key: str | None = None
    """
    Accepted and ignored (the prefix cache is automatic).
    """
    safety_identifier: str | None = None
    """
    Accepted and ignored.
    """


class InputTokensRequest(BaseModel):
    """
    The fields of CreateResponseRequest that make the prompt; the rest are ignored.
    """

    model: str | None = None
    input: ResponseInput
    instructions: str | None = None
    previous_response_id: str | None = None
    tools: list[ResponseTool] | None = Field(None, max_length=128)
    tool_choice: ResponseToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: ResponseTextParam | None = None
    reasoning: ResponseReasoningParam | None = None
    truncation: Literal['auto', 'disabled'] | None = None


class ResponseOutputItem(
    RootModel[
        ResponseOutputMessage
        | ResponseFunctionToolCall
        | ResponseCustomToolCall
        | ResponseReasoningItem
    ]
):
    root: (
        ResponseOutputMessage
        | ResponseFunctionToolCall
        | ResponseCustomToolCall
        | ResponseReasoningItem
    ) = Field(..., discriminator='type')
    """
    An output item, by `type`.
    """


class ResponseOutputItemEvent(BaseModel):
    """
    response.output_item.added (the item as it starts) and response.output_item.done (as it ends).
    """

    type: Literal['response.output_item.added', 'response.output_item.done']
    sequence_number: int
    output_index: int
    item: ResponseOutputItem


class Response(BaseModel):
    id: str = Field(..., examples=['resp_0123456789abcdef0123456789abcdef'])
    object: Literal['response']
    created_at: int
    completed_at: int | None = None
    status: Literal['completed', 'failed', 'in_progress', 'incomplete']
    background: bool | None = None
    error: ResponseError | None
    incomplete_details: ResponseIncompleteDetails | None
    instructions: str | None = Field(...)
    max_output_tokens: int | None = None
    model: str
    output: list[ResponseOutputItem]
    parallel_tool_calls: bool
    previous_response_id: str | None = None
    reasoning: ResponseReasoningParam | None = None
    service_tier: Literal['auto', 'default', 'flex', 'scale', 'priority'] | None = None
    store: bool | None = None
    temperature: float | None = Field(...)
    text: ResponseTextConfig | None = None
    tool_choice: ResponseToolChoice
    tools: list[dict[str, Any]]
    top_logprobs: int | None = None
    top_p: float | None = Field(...)
    truncation: Literal['auto', 'disabled'] | None = None
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, str]


class ResponseLifecycleEvent(BaseModel):
    """
    response.created, response.in_progress, response.completed, response.incomplete, response.failed.
    """

    type: Literal[
        'response.created',
        'response.in_progress',
        'response.completed',
        'response.incomplete',
        'response.failed',
    ]
    sequence_number: int
    response: Response
