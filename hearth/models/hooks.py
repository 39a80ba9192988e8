"""What the server layer observes of models and requests: named hooks, no-ops here.

The app's telemetry (hearth/web/telemetry.py) implements them; the registry calls the model hooks,
a Request calls the request hooks, on the event loop. `tokens` runs once per streamed Delta: keep it cheap.
"""
from __future__ import annotations


class Hooks:
    def model_loaded(self, instance) -> None:
        """A load finished: `instance.load_seconds`."""

    def model_failed(self, instance, seconds: float) -> None:
        """A load failed after `seconds`: `instance.error`."""

    def admitted(self, request) -> None:
        """Every choice of `request` is admitted (or, for embeddings, embedded)."""

    def first_token(self, request, k: int, seconds: float) -> None:
        """A choice's first `k` tokens reached the HTTP layer, `seconds` after admission."""

    def tokens(self, request, k: int, gap: float) -> None:
        """`k` more tokens of one choice reached the HTTP layer, `gap` seconds after its previous ones."""
