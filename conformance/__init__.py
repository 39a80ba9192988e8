"""Hearth's conformance suite: a client-side verdict on any OpenAI-compatible server.

It talks HTTP only (the official `openai` SDK for replay, raw httpx for the wire), validates every
body and stream chunk against the OpenAPI contract, and knows nothing of the server's code.
Run it with `python -m conformance --base-url http://127.0.0.1:1234/v1`.
"""
