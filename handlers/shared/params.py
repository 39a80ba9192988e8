"""A chat or completions request -> the engine's SamplingParams, one set per choice."""
from __future__ import annotations

from dataclasses import replace

from hearth import limits
from hearth.engine import api
from hearth.errors import invalid_value

SEED_SPACE = 2**32


def sampling(req, n_choices: int, logprobs: int | None = None, model: api.ModelInfo | None = None,
             zero_tokens: bool = False) -> list[api.SamplingParams]:
    """The request's sampling parameters, one set per choice (with a seed, choice i uses seed + i).
    `logprobs`: None for none, else how many alternatives per token (0: the chosen token's only);
    `model`: the one serving the request (its context ceiling bounds max_tokens); `zero_tokens`: whether
    max_tokens 0 (the prompt only) is accepted."""
    name, max_tokens = "max_tokens", req.max_tokens
    if getattr(req, "max_completion_tokens", None) is not None:
        name, max_tokens = "max_completion_tokens", req.max_completion_tokens
    if max_tokens == 0 and not zero_tokens:
        raise invalid_value(name, f"{name} must be at least 1, or -1 for no limit.")
    if model and model.n_ctx and max_tokens is not None and max_tokens > model.n_ctx:
        raise invalid_value(name, f"{name} ({max_tokens}) exceeds the model's context ceiling ({model.n_ctx} tokens).")
    stop = req.stop.root if req.stop is not None else None
    stop = (stop,) if isinstance(stop, str) else tuple(getattr(stop, "root", stop) or ())
    seed = None if req.seed is None else req.seed % SEED_SPACE
    base = api.SamplingParams(
        temperature=0.8 if req.temperature is None else req.temperature,
        top_p=0.95 if req.top_p is None else req.top_p,
        max_tokens=limits.cap_max_tokens(n_choices, None if max_tokens in (None, -1) else max_tokens,
                                         model.n_ctx if model else None, name),
        stop=tuple(s for s in stop if s),
        presence_penalty=req.presence_penalty or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        logprobs=logprobs,
        logit_bias=logit_bias(req),
    )
    return [replace(base, seed=None if seed is None else (seed + i) % SEED_SPACE) for i in range(n_choices)]


def logit_bias(req) -> tuple[tuple[int, float], ...]:
    """OpenAI's {"token id": bias} as (id, bias) pairs; the engine checks the ids against the vocabulary."""
    raw = getattr(req, "logit_bias", None)
    if raw is None:
        return ()
    pairs = []
    for key, bias in raw.root.items():
        try:
            token = int(key)
        except ValueError:
            raise invalid_value("logit_bias", f"logit_bias keys must be token ids (integers), got {key!r}.") from None
        pairs.append((token, float(getattr(bias, "root", bias))))
    return tuple(pairs)


def chat_logprobs(req) -> int | None:
    """Chat's `logprobs` (bool) + `top_logprobs` (0-20) -> alternatives per token, or None."""
    if req.top_logprobs and not req.logprobs:  # 0 without logprobs asks for nothing: accepted
        raise invalid_value("top_logprobs", "top_logprobs requires logprobs to be true.")
    return (req.top_logprobs or 0) if req.logprobs else None
