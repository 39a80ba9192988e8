"""The OpenAI Agents SDK against Hearth, with its default model (OpenAIResponsesModel: the Responses API,
streamed and not) and a function tool, unchanged but for the base URL."""
from __future__ import annotations

import asyncio

import pytest
from agents import (Agent, ModelSettings, OpenAIResponsesModel, RunConfig, Runner, function_tool,
                    set_tracing_disabled)
from openai import AsyncOpenAI
from pydantic import BaseModel

set_tracing_disabled(True)  # no exporter: nothing leaves the machine
SETTINGS = ModelSettings(temperature=0, max_tokens=120)


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"It is sunny and 21 C in {city}."


def run(server: str, agent: Agent, ask: str, stream: bool = False):
    async def go():
        async with AsyncOpenAI(base_url=server, api_key="x", max_retries=0) as client:
            config = RunConfig(model=OpenAIResponsesModel(model="any", openai_client=client))
            if not stream:
                return await Runner.run(agent, ask, run_config=config, max_turns=4)
            result = Runner.run_streamed(agent, ask, run_config=config, max_turns=4)
            async for _ in result.stream_events():
                pass
            return result

    return asyncio.run(go())


def test_agent_answers_text(server):
    agent = Agent(name="greeter", instructions="Answer briefly.", model_settings=SETTINGS)
    result = run(server, agent, "Say hello.")
    assert isinstance(result.final_output, str) and result.final_output.strip()


@pytest.mark.parametrize("stream", [False, True])
def test_agent_calls_a_function_tool(server, stream):
    """The model must call the tool (tool_choice required); the SDK runs it and stops there with its output."""
    agent = Agent(name="weather", instructions="Use the tool to answer.", tools=[get_weather],
                  model_settings=ModelSettings(temperature=0, max_tokens=120, tool_choice="required",
                                               parallel_tool_calls=False),
                  tool_use_behavior="stop_on_first_tool")
    result = run(server, agent, "What is the weather in Paris?", stream=stream)
    assert result.final_output.startswith("It is sunny and 21 C in ")
    calls = [i for i in result.new_items if i.type == "tool_call_item"]
    assert len(calls) == 1


def test_agent_tool_round_trip_then_text(server):
    """The tool's output goes back as a function_call_output item; the next turn answers in text."""
    agent = Agent(name="weather", instructions="Use the tool, then answer.", tools=[get_weather],
                  model_settings=ModelSettings(temperature=0, max_tokens=60, tool_choice="required",
                                               parallel_tool_calls=False))  # reset_tool_choice: auto after a call
    result = run(server, agent, "What is the weather in Paris?")
    kinds = [i.type for i in result.new_items]
    assert kinds[:2] == ["tool_call_item", "tool_call_output_item"] and isinstance(result.final_output, str)


class Weather(BaseModel):
    city: str
    celsius: int


def test_agent_structured_output(server):
    agent = Agent(name="structured", instructions="Report the weather in Paris as 21 C.", output_type=Weather,
                  model_settings=SETTINGS)
    result = run(server, agent, "Weather report.")
    assert isinstance(result.final_output, Weather)
