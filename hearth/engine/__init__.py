"""The engine: the only package that imports llama_cpp. Handlers see `api` only."""
from hearth.engine.api import *  # noqa: F401,F403
