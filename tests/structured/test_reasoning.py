"""hearth/structured/reasoning.py: <think> text split from the answer, in any split of the stream."""
import pytest

from hearth.structured.reasoning import ThinkSplitter

CASES = [
    # (answer, opened by the prompt, reasoning, content)
    ("<think>\nI should greet.\n</think>\n\nHello!", False, "I should greet.\n", "Hello!"),
    ("  <think>a</think>b", False, "a", "b"),
    ("Hello <think>not at the start</think>", False, "", "Hello <think>not at the start</think>"),
    ("<thin", False, "", "<thin"),  # ended where it could still have become the tag: content
    ("I think.\n</think>\nAnswer", True, "I think.\n", "Answer"),
    ("still thinking when cut", True, "still thinking when cut", ""),
    ("<think>a</thinkx b</think>c", False, "a</thinkx b", "c"),
    ("", False, "", ""),
    ("\n\nplain text", False, "", "\n\nplain text"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 100])
@pytest.mark.parametrize("answer, opened, reasoning, content", CASES)
def test_split_in_any_pieces(answer, opened, reasoning, content, size):
    s = ThinkSplitter(opened)
    got_r = got_c = ""
    for i in range(0, len(answer), size):
        r, c = s.feed(answer[i:i + size])
        got_r, got_c = got_r + r, got_c + c
    r, c = s.finish()
    assert (got_r + r, got_c + c) == (reasoning, content)


def test_plain_text_is_not_held_back():
    s = ThinkSplitter()
    assert s.feed("Hello") == ("", "Hello")
    assert s.feed(" world") == ("", " world")
