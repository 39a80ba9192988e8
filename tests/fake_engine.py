"""A fake engine for the one path a real model cannot reach on demand: an engine failure mid-request."""
from __future__ import annotations

import asyncio

from hearth.engine import api


class FakeGeneration:
    def __init__(self, pieces, fail_after=None):
        self.pieces, self.prompt_tokens, self.completion_tokens, self.finish_reason = pieces, 3, 0, None
        self.cancelled, self.fail_after = False, fail_after

    async def __aiter__(self):
        for piece in self.pieces:
            if self.cancelled:
                break
            await asyncio.sleep(0)
            if self.completion_tokens == self.fail_after:
                raise api.GenerationFailed("boom")
            self.completion_tokens += 1
            yield api.Delta(piece, (api.TokenOut(self.completion_tokens, piece.encode()),))
        self.finish_reason = api.FinishReason.STOP

    def cancel(self):
        self.cancelled = True


class FakeEngine:
    def __init__(self, state=api.LoadState.READY, overloaded=False, fail_after=None):
        self.state, self.overloaded, self.fail_after = state, overloaded, fail_after
        self.model = api.ModelInfo(id="fake-model", n_ctx=256, created=0) if state == api.LoadState.READY else None
        self.started = self.closed = False

    def start(self):
        self.started = True

    def close(self):
        self.closed = True

    def _check(self):
        if self.state == api.LoadState.LOADING:
            raise api.ModelLoading("The model is still loading.", retry_after=2)
        if self.state != api.LoadState.READY:
            raise api.ModelNotLoaded("No model is loaded.")
        if self.overloaded:
            raise api.Overloaded("Too many requests are waiting.", retry_after=1)

    async def submit(self, prompt, params):
        self._check()
        return FakeGeneration(["Hel", "lo", "!"], self.fail_after)

    async def embed(self, texts):
        self._check()
        return api.Embeddings(vectors=[[1.0, 0.0] for _ in texts], prompt_tokens=len(texts))

    def stats(self):
        return {}
