"""Every case, registered in running order by importing its module (loading first: it must see the server cold)."""
from conformance.cases import loading, models, lmstudio, chat, completions, logprobs, embeddings, errors, http, tools, structured, responses, messages, fuzz  # noqa: F401
