"""Structured output: JSON-schema and tool-call grammars (llguidance), the per-sequence constraint the
engine enforces, tool formats in prompts, and the parser that splits an answer into text and calls."""
