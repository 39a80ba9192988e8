"""Incremental detokenisation: UTF-8 never split, stop strings never emitted (unit, no model)."""
from hearth.engine.sequence import TextOut


def feed_all(out: TextOut, chunks):
    emitted, stopped = [], False
    for c in chunks:
        text, stopped = out.feed(c)
        emitted.append(text)
        if stopped:
            return emitted, True
    emitted.append(out.flush())
    return emitted, stopped


def test_multibyte_characters_are_never_split():
    data = "héllo 世界 🙂!".encode()
    chunks = [data[i : i + 1] for i in range(len(data))]  # one byte at a time
    emitted, _ = feed_all(TextOut(()), chunks)
    assert "".join(emitted) == "héllo 世界 🙂!"
    assert all("\ufffd" not in e for e in emitted)


def test_stop_string_is_not_emitted_and_partial_matches_are_held():
    out = TextOut(("STOP",))
    assert out.feed(b"abc ST") == ("abc ", False)  # "ST" may begin the stop string: held back
    assert out.feed(b"OP and more") == ("", True)


def test_held_text_is_released_when_it_turns_out_not_to_be_a_stop():
    out = TextOut(("STOP",))
    assert out.feed(b"abc ST") == ("abc ", False)
    assert out.feed(b"ART") == ("START", False)


def test_stop_across_many_chunks_and_several_stops():
    emitted, stopped = feed_all(TextOut(("\n\n", "END")), [b"one", b" E", b"N", b"D", b"x"])
    assert stopped and "".join(emitted) == "one "


def test_held_text_is_flushed_at_the_end():
    emitted, stopped = feed_all(TextOut(("STOP",)), [b"the S", b"TO"])
    assert not stopped and "".join(emitted) == "the STO"
