"""Real-model engine fixture: one engine over SmolLM2-135M for the session (small context: fast)."""
from __future__ import annotations

import pytest

from support import make_engine


@pytest.fixture(scope="session")
def engine():
    eng = make_engine(n_ctx=512, n_parallel=4, max_queue=32)
    yield eng
    eng.close()
