"""Model lifecycle: the models on disk (catalog, GGUF headers), fetching the defaults, the registry
that loads, routes and unloads them, and the Request a handler drives."""
