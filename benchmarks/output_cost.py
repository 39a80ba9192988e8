"""What the engine's per-token Python costs: output processors (detokenizer, stop strings) and
logprobs, measured in-process on the real model, paired and alternated in one run.

    nice .venv/bin/python -m benchmarks.output_cost [--tokens 256] [--repeats 5]

For each repeat it runs one greedy request of `--tokens` tokens (end-of-generation banned with
logit_bias so every run has the same length) three ways, in alternating order: plain, with a stop
string that never matches (the held-back path), and with logprobs=5. It reports the median
wall time per token of each, the ratio to plain, and the engine thread's own CPU time per token
inside output processing (`_process`) and inside the logprob computation (time.thread_time around
them, so that preemption on a busy machine does not count).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from hearth.engine import EngineConfig, LoadState, Prompt, SamplingParams, create_engine
from hearth.models.defaults import default_model_path


class Timer:
    def __init__(self, obj, name):
        self.total, self.calls = 0.0, 0
        real = getattr(obj, name)

        def timed(*a, **k):
            t = time.thread_time()  # the engine thread's CPU time: preemption on a busy machine does not count
            try:
                return real(*a, **k)
            finally:
                self.total += time.thread_time() - t
                self.calls += 1

        setattr(obj, name, timed)

    def take(self) -> float:
        per = self.total / max(1, self.calls)
        self.total, self.calls = 0.0, 0
        return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    eng = create_engine(EngineConfig(model_path=str(default_model_path()), n_ctx=1024, n_parallel=1))
    eng.start()
    while eng.state is LoadState.LOADING:
        time.sleep(0.05)
    assert eng.state is LoadState.READY
    eos = [t for t in range(eng._model.n_vocab) if eng._model.is_eog(t)]
    ban = tuple((t, -100.0) for t in eos)
    prompt = Prompt(text="Once upon a time, in a small village by the sea,")
    variants = {
        "plain": SamplingParams(temperature=0, max_tokens=args.tokens, logit_bias=ban),
        "stop": SamplingParams(temperature=0, max_tokens=args.tokens, logit_bias=ban, stop=("\x00never\x00",)),
        "logprobs5": SamplingParams(temperature=0, max_tokens=args.tokens, logit_bias=ban, logprobs=5),
    }
    process = Timer(eng, "_process")
    lp = Timer(eng._llama[1], "_with_logprobs")
    wall: dict[str, list[float]] = {k: [] for k in variants}
    proc: dict[str, list[float]] = {k: [] for k in variants}
    lps: list[float] = []

    async def once(params):
        gen = await eng.submit(prompt, params)
        t = time.perf_counter()
        async for _ in gen:
            pass
        assert gen.completion_tokens == args.tokens, gen.completion_tokens
        return (time.perf_counter() - t) / args.tokens

    asyncio.run(once(variants["plain"]))  # warm up (and cache the prompt for every later run)
    process.take(), lp.take()
    for r in range(args.repeats):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            wall[name].append(asyncio.run(once(variants[name])))
            proc[name].append(process.take())
            if name == "logprobs5":
                lps.append(lp.take())
    eng.close()
    base = statistics.median(wall["plain"])
    print(f"{args.tokens} greedy tokens, median of {args.repeats} paired runs (ms per token):")
    for name in variants:
        w = statistics.median(wall[name])
        print(f"  {name:10s} wall {w * 1e3:6.3f}  ratio to plain {w / base:5.3f}  "
              f"output processing (engine-thread CPU) {statistics.median(proc[name]) * 1e6:6.1f} us")
    print(f"  logprobs (log-softmax + top-5 over the vocabulary, engine-thread CPU): {statistics.median(lps) * 1e6:6.1f} us per token")


if __name__ == "__main__":
    main()
