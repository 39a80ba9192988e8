"""Output processors (unit, no model): UTF-8 never split, stop strings never emitted, and every
Delta's tokens spell its text exactly."""
from hearth.engine.api import Delta, SamplingParams, TokenOut, ToolCallDelta
from hearth.engine.output import Detokenizer, OutputProcessor


def toks(*pieces: bytes):
    return [TokenOut(i, p, logprob=-float(i)) for i, p in enumerate(pieces)]


def feed_all(out: Detokenizer, tokens):
    """([emitted Deltas], stopped)"""
    emitted = []
    for t in tokens:
        d, stopped = out.feed(t)
        if d is not None:
            emitted.append(d)
        if stopped:
            return emitted, True
    d = out.flush()
    return emitted + ([d] if d is not None else []), False


def text(deltas) -> str:
    return "".join(d.text for d in deltas)


def assert_exact(deltas):
    for d in deltas:
        assert d.text.encode() == b"".join(t.piece for t in d.tokens), d


def test_multibyte_characters_are_never_split():
    data = "héllo 世界 🙂!".encode()
    emitted, _ = feed_all(Detokenizer(), toks(*[data[i : i + 1] for i in range(len(data))]))
    assert text(emitted) == "héllo 世界 🙂!"
    assert all("\ufffd" not in d.text and d.text for d in emitted)
    assert_exact(emitted)
    assert sum(len(d.tokens) for d in emitted) == len(data)  # every token reported once


def test_a_token_ending_mid_character_comes_out_with_the_character_it_completes():
    a, b = "日".encode()[:2], "日".encode()[2:] + b"!"
    out = Detokenizer()
    assert out.feed(TokenOut(1, a)) == (None, False)
    d, _ = out.feed(TokenOut(2, b))
    assert d.text == "日!" and [t.id for t in d.tokens] == [1, 2]


def test_stop_string_is_not_emitted_and_partial_matches_are_held():
    out = Detokenizer(("STOP",))
    d, stopped = out.feed(TokenOut(1, b"abc ST"))
    assert d is None and not stopped  # "ST" may begin the stop string: the whole token is held
    d, stopped = out.feed(TokenOut(2, b"OP and more"))
    assert stopped and d.text == "abc "
    assert [(t.id, t.piece) for t in d.tokens] == [(1, b"abc ")]  # the cut token: only its bytes before the stop


def test_tokens_wholly_inside_the_stop_string_are_dropped():
    emitted, stopped = feed_all(Detokenizer(("STOP",)), toks(b"one", b" ", b"ST", b"OP", b"x"))
    assert stopped and text(emitted) == "one " and [t.id for d in emitted for t in d.tokens] == [0, 1]
    assert_exact(emitted)


def test_held_text_is_released_when_it_turns_out_not_to_be_a_stop():
    out = Detokenizer(("STOP",))
    assert out.feed(TokenOut(1, b"abc ST")) == (None, False)
    d, stopped = out.feed(TokenOut(2, b"ART"))
    assert not stopped and d.text == "abc START" and len(d.tokens) == 2


def test_stop_across_many_tokens_and_several_stops():
    emitted, stopped = feed_all(Detokenizer(("\n\n", "END")), toks(b"one", b" E", b"N", b"D", b"x"))
    assert stopped and text(emitted) == "one "
    assert_exact(emitted)


def test_held_text_is_flushed_at_the_end():
    emitted, stopped = feed_all(Detokenizer(("STOP",)), toks(b"the S", b"TO"))
    assert not stopped and text(emitted) == "the STO"
    assert_exact(emitted)


def test_stop_string_inside_a_multibyte_run():
    data = "αβγ STOP δ".encode()
    emitted, stopped = feed_all(Detokenizer(("STOP",)), toks(*[data[i : i + 1] for i in range(len(data))]))
    assert stopped and text(emitted) == "αβγ "
    assert_exact(emitted)


class Calls:
    """A toy tool-call parser: text after '@' is the arguments of one call named 'f'."""

    done = False

    def __init__(self):
        self.inside = False

    def feed(self, text):
        if self.inside:
            return "", [ToolCallDelta(0, arguments=text)]
        head, at, tail = text.partition("@")
        if not at:
            return text, []
        self.inside = True
        return head, [ToolCallDelta(0, id="call_1", name="f"), ToolCallDelta(0, arguments=tail)]

    def finish(self):
        return "", []


def test_the_tool_call_parser_sees_the_text_after_stop_strings():
    out = OutputProcessor(SamplingParams(stop=("END",), tool_parser=Calls))
    deltas = [out.feed(t)[0] for t in toks(b"hi @", b'{"a"', b":1}", b"END")]
    last = out.finish(flush=False)
    assert last is None and deltas[-1] is None
    assert "".join(d.text for d in deltas[:3]) == "hi "
    args = "".join(c.arguments for d in deltas[:3] for c in d.tool_calls)
    assert args == '{"a":1}' and out.n_tool_calls == 1 and out.n_tokens == 3


def test_completion_tokens_count_the_reported_tokens():
    out = OutputProcessor(SamplingParams(stop=("STOP",)))
    reported = []
    for t in toks(b"a", b"b", b"ST", b"OP"):
        d, stopped = out.feed(t)
        reported += list(d.tokens) if d else []
    assert stopped and out.n_tokens == len(reported) == 2
    assert isinstance(Delta("x"), Delta)


def test_top_k_matches_a_full_sort_ties_included():
    import numpy as np

    from hearth.engine.model_runner import top_k

    rng = np.random.default_rng(0)
    for n, k in ((49152, 5), (49152, 20), (100, 20), (10, 3), (49152, 1)):
        x = (rng.standard_normal(n) * 3).astype(np.float32)
        x[rng.integers(0, n, 5)] = x.max()  # ties at the top
        want = sorted(range(n), key=lambda i: (-x[i], i))[:k]
        assert list(top_k(x, k)) == want
