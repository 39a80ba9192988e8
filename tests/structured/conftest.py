"""The real model's vocabulary, for grammar tests (no generation: loading the weights takes ~0.3 s)."""
import pytest

from hearth.structured.constraint import Grammars
from hearth.models.defaults import default_model_path


@pytest.fixture(scope="session")
def model():
    from hearth.engine.model import Model

    m = Model(str(default_model_path()))
    yield m
    m.close()


@pytest.fixture(scope="session")
def grammars(model):
    eog = [t for t in range(model.n_vocab) if model.is_eog(t)]
    return Grammars(model.vocab, model.n_vocab, eog)
