"""Run by tests/system/test_instructor.py inside its own virtualenv (instructor 1.17 pins jiter<0.15 and rich<15,
which the project's openai 3.54 and schemathesis exclude). Prints one JSON line per check."""
import json
import sys

import instructor
from openai import OpenAI
from pydantic import BaseModel, Field


class Person(BaseModel):
    name: str = Field(max_length=24)
    age: int = Field(ge=0, le=130)


class Weather(BaseModel):
    city: str = Field(max_length=30)
    unit: str = Field(pattern="^(celsius|fahrenheit)$")


base_url = sys.argv[1]
raw = OpenAI(base_url=base_url, api_key="lm-studio", max_retries=0, timeout=180)
for mode in (instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA):
    client = instructor.from_openai(raw, mode=mode)
    for model, prompt in ((Person, "Ada is 36 years old. Extract the person."),
                          (Weather, "What is the weather like in Paris, in celsius?")):
        result = client.chat.completions.create(model="m", response_model=model, max_retries=0, temperature=0,
                                                max_tokens=150, messages=[{"role": "user", "content": prompt}])
        print(json.dumps({"mode": mode.value, "model": model.__name__, "type": type(result).__name__,
                          "value": result.model_dump()}), flush=True)
