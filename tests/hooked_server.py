"""`hearth serve` over the real engine, held in a state on demand: the test hooks live here, not in hearth/.

    python tests/hooked_server.py --load-delay SECONDS serve [hearth serve flags]

`--load-delay`: the model load starts only after SECONDS, so that the 503 `model_loading` answer of every
route can be observed deterministically over the real model (a 135M model otherwise loads in ~1 s).
"""
from __future__ import annotations

import argparse
import sys
import threading

from hearth import cli
from hearth.engine import api, create_engine


class DelayedStart:
    """The real engine, reporting LOADING (and refusing requests as loading) until its delayed start."""

    def __init__(self, engine: api.Engine, delay: float):
        self._engine, self._delay, self._started = engine, delay, False
        self._timer: threading.Timer | None = None

    def __getattr__(self, name):
        return getattr(self._engine, name)

    @property
    def state(self) -> api.LoadState:
        return self._engine.state if self._started else api.LoadState.LOADING

    @property
    def model(self):
        return self._engine.model if self._started else None

    def start(self) -> None:
        def later():
            self._engine.start()
            self._started = True

        self._timer = threading.Timer(self._delay, later)
        self._timer.daemon = True  # a pending start never keeps the process alive
        self._timer.start()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._engine.close()

    def _check(self) -> None:
        if not self._started:
            raise api.ModelLoading("The model is still loading; retry shortly.", retry_after=1)

    async def submit(self, prompt, params):
        self._check()
        return await self._engine.submit(prompt, params)

    async def embed(self, texts):
        self._check()
        return await self._engine.embed(texts)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="hooked_server")
    parser.add_argument("--load-delay", type=float, required=True)
    hooks, rest = parser.parse_known_args(argv)
    cli.main(rest, engine_factory=lambda kind, config: DelayedStart(create_engine(config, kind), hooks.load_delay))


if __name__ == "__main__":
    main(sys.argv[1:])
