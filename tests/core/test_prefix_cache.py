"""The global prefix cache: cached == uncached outputs, eviction, coalesced bursts, conversation turns."""
import asyncio

from hearth.engine import ChatMessage, Prompt, SamplingParams
from hearth.engine.prefix_cache import MIN_CALL

from support import collect, greedy, make_engine, run

SYSTEM = "You are a careful assistant for the Hearth project. " + " ".join(
    f"Rule {i}: answer briefly, precisely and politely, and never invent facts about topic {i}." for i in range(12)
)


def ask(q: str, system: str = SYSTEM) -> Prompt:
    return Prompt(messages=(ChatMessage("system", system), ChatMessage("user", q)))


def delta(eng, before, key):
    return eng.stats()[key] - before[key]


def test_cached_and_uncached_prefixes_give_identical_outputs():
    # a fresh engine per path: "uncached" really evaluates everything
    prompts = [ask("What is your first rule?"), ask("Summarise rule 3."), ask("What is your first rule?")]
    params = [greedy(20), SamplingParams(temperature=0.8, max_tokens=20, seed=99), greedy(20)]
    fresh = []
    for p, k in zip(prompts, params):
        eng = make_engine(n_ctx=512, n_parallel=2)
        try:
            fresh.append(run(collect(eng, p, k))[0])
        finally:
            eng.close()
    eng = make_engine(n_ctx=512, n_parallel=2)
    try:
        warm = []
        for p, k in zip(prompts, params):
            before = eng.stats()
            warm.append(run(collect(eng, p, k))[0])
            cached = delta(eng, before, "cached_prompt_tokens")
            if warm[1:]:  # every request after the first reused the system prompt
                assert cached >= 3 * MIN_CALL, cached
        assert warm == fresh
    finally:
        eng.close()


def test_a_burst_of_identical_prefixes_prefills_once(engine):
    system = SYSTEM.replace("Hearth", "Burst")  # not cached yet
    n = engine.stats()["n_parallel"]
    before = engine.stats()
    prompts = [ask(f"Question {i}: what is rule {i}?", system) for i in range(n)]

    async def burst():
        return await asyncio.gather(*(collect(engine, p, greedy(4)) for p in prompts))

    results = run(burst())
    prefilled = delta(engine, before, "prefill_tokens")
    longest = max(g.prompt_tokens for _, _, g in results)
    # the shared part is evaluated once; each other request evaluates only its own question, plus at
    # most the last two blocks of the shared part when its split differs (prefix_cache.split)
    assert prefilled <= longest + (n - 1) * (2 * MIN_CALL + 16), (prefilled, longest)
    assert prefilled < 2 * longest  # without coalescing: n * longest
    assert delta(engine, before, "coalesced") + delta(engine, before, "cache_hits") >= n - 1
    # and each got the same text as it gets alone (now from the cache)
    for p, (text, _, _) in zip(prompts, results):
        assert run(collect(engine, p, greedy(4)))[0] == text


def test_conversation_turns_reuse_the_previous_turn(engine):
    q1 = (ChatMessage("system", SYSTEM), ChatMessage("user", "Pick a colour."))
    reply, _, g1 = run(collect(engine, Prompt(messages=q1), greedy(12)))
    before = engine.stats()
    q2 = q1 + (ChatMessage("assistant", reply), ChatMessage("user", "Why that one?"))
    g2 = run(collect(engine, Prompt(messages=q2), greedy(4)))[2]
    cached = delta(engine, before, "cached_prompt_tokens")
    # the previous prompt's big-call cells (generated cells are not exact; the new turn is longer, so
    # its split is later and the previous prompt's last one or two blocks, computed small, are not reused)
    assert cached >= g1.prompt_tokens - 2 * MIN_CALL
    assert cached + delta(engine, before, "prefill_tokens") == g2.prompt_tokens


def test_a_repeated_short_prompt_reuses_all_but_its_last_token(engine):
    # shorter than one small call: in place, or copied from a slot a running sequence holds
    prompt = Prompt(text="Here is a long list of birds, one per line:\n1. robin\n2.")
    text, _, g = run(collect(engine, prompt, greedy(6)))
    before = engine.stats()
    assert run(collect(engine, prompt, greedy(6)))[0] == text
    assert delta(engine, before, "cached_prompt_tokens") == g.prompt_tokens - 1
    assert delta(engine, before, "prefill_tokens") == 1

    async def beside_a_running_one():
        other = asyncio.ensure_future(collect(engine, prompt, greedy(40)))
        await asyncio.sleep(0.2)  # it holds the cached cells now
        before = engine.stats()
        mine = await collect(engine, prompt, greedy(6))
        return mine[0], delta(engine, before, "prefill_tokens"), await other

    mine, prefilled, _ = run(beside_a_running_one())
    assert mine == text and prefilled == 1

    # after a long answer the prompt is a small part of the slot the next request takes: the slot's
    # entry is kept elsewhere and the prompt still reused whole
    other = Prompt(text="Here is a long list of mountains, one per line:\n1. Everest\n2.")
    long_text = run(collect(engine, other, greedy(60)))[0]
    before = engine.stats()
    assert long_text.startswith(run(collect(engine, other, greedy(6)))[0])
    assert delta(engine, before, "prefill_tokens") == 1


def test_a_sequence_moved_into_a_hole_goes_on_bit_for_bit():
    # three run together; the middle one ends first; the last moves into its stream (compact) and
    # both long ones still give, token for token, what each gives alone (all under 256 cells)
    eng = make_engine(n_ctx=512, n_parallel=3)
    try:
        prompts = [Prompt(text=f"Here is a long list of {t}, one per line:\n1.") for t in ("birds", "rivers", "stars")]
        alone = [run(collect(eng, p, greedy(60)))[0] for p in (prompts[0], prompts[2])]
        swaps = eng._cache.swaps

        async def together():
            return await asyncio.gather(collect(eng, prompts[0], greedy(60)), collect(eng, prompts[1], greedy(3)),
                                        collect(eng, prompts[2], greedy(60)))

        first, _, last = run(together())
        assert [first[0], last[0]] == alone
        assert eng._cache.swaps == swaps + 1  # the last one moved into the middle one's stream
    finally:
        eng.close()


def test_eviction_never_corrupts_a_running_sequence():
    eng = make_engine(n_ctx=512, n_parallel=2)  # 3-4 slots: churn forces evictions
    try:
        # short prompt: the sequence stays under 256 tokens, where alone == under load bit for bit
        long_prompt = Prompt(messages=(ChatMessage("user", "Write a long list of animals, one per line."),))
        solo = run(collect(eng, long_prompt, greedy(120)))[0]
        before = eng.stats()

        async def churn():
            long = asyncio.ensure_future(collect(eng, long_prompt, greedy(120)))
            for i in range(10):
                await collect(eng, Prompt(text=f"Fact {i}: the number {i * 7919} is"), greedy(3))
            return await long

        text = run(churn())[0]
        assert eng.stats()["evictions"] > before["evictions"]
        assert text == solo
    finally:
        eng.close()


def test_cancelling_the_request_others_coalesced_on_leaves_them_unharmed(engine):
    system = SYSTEM.replace("Hearth", "Cancel")  # not cached yet
    prompts = [ask(f"Question {i}: what is rule {i}?", system) for i in range(3)]

    async def go():
        first = await engine.submit(prompts[0], greedy(4))
        rest = [asyncio.ensure_future(collect(engine, p, greedy(4))) for p in prompts[1:]]
        await asyncio.sleep(0)
        first.cancel()  # the one whose prefill the others wait for
        return [r[0] for r in await asyncio.gather(*rest)]

    texts = run(go())
    assert texts == [run(collect(engine, p, greedy(4)))[0] for p in prompts[1:]]
    assert engine.stats()["outstanding"] == 0

