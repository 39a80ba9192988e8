"""`hearth serve` starts the server; `hearth fetch-models` fetches the default models; `hearth conformance` runs the suite."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable

from hearth import models
from hearth.engine import api

EngineFactory = Callable[[api.EngineConfig], api.Engine]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hearth", description="A local, OpenAI-compatible LLM server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the OpenAI-compatible API")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    serve.add_argument("--port", type=int, default=1234)
    serve.add_argument("--model", type=Path, help="a .gguf file (default: SmolLM2-135M-Instruct, fetched once)")
    serve.add_argument("--model-id", help="the id /v1/models reports (default: the file name without .gguf)")
    serve.add_argument("--ctx-size", type=int, default=4096, help="context ceiling of one sequence, in tokens")
    serve.add_argument("--threads", type=int, help="CPU threads for inference (default: all cores)")
    serve.add_argument("--parallel", type=int, help="sequences decoded together (default: from cores and context)")
    serve.add_argument("--max-queue", type=int, default=64, help="requests that may wait; more get 503")
    serve.add_argument("--cors-origin", action="append", help="allowed browser origin (repeatable; default: *)")
    serve.add_argument("--verbose", action="store_true", help="show llama.cpp's and uvicorn's logs")
    serve.add_argument("--log-format", choices=("text", "json"), default="text",
                       help="request log lines (one per request) as text or JSON (default: text)")
    sub.add_parser("fetch-model", help="fetch the default chat model into the models dir and print its path")
    fetch = sub.add_parser("fetch-models", help="fetch the default models (chat, embedding, a second chat model) "
                           "into the models dir, once, and print their paths")
    fetch.add_argument("--models-dir", type=Path, help="default: ~/.cache/hearth/models ($HEARTH_MODELS_DIR)")
    sub.add_parser("conformance", help="run the conformance suite (see python -m conformance --help)", add_help=False)
    return parser


def serve(args: argparse.Namespace, engine_factory: EngineFactory | None = None) -> None:
    """Serve until interrupted. `engine_factory` (default: the llama.cpp engine) makes the engine from
    the command line's settings; tests pass their own to hold the model in states on demand."""
    import uvicorn

    from hearth.app import create_app
    from hearth.engine import create_engine
    from hearth.web import requestlog
    from hearth.web.banner import BannerServer

    model_path = args.model or models.default_model_path()
    if not Path(model_path).is_file():
        sys.exit(f"hearth: no such model file: {model_path}")
    engine = (engine_factory or create_engine)(
        api.EngineConfig(
            model_path=str(model_path), model_id=args.model_id, n_ctx=args.ctx_size, n_threads=args.threads,
            n_parallel=args.parallel, max_queue=args.max_queue, verbose=args.verbose,
        )
    )
    app = create_app(engine, cors_origins=args.cors_origin or ("*",))
    requestlog.configure(args.log_format)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info" if args.verbose else "warning",
                            access_log=False, timeout_graceful_shutdown=3)
    name = args.model_id or Path(model_path).name.removesuffix(".gguf")

    def loaded() -> str:
        state = getattr(engine.state, "value", engine.state)
        return name if state == "ready" else f"{name} ({state}; a line follows when it is ready)"

    BannerServer(config, loaded).run()


def main(argv: list[str] | None = None, engine_factory: EngineFactory | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["conformance"]:
        from conformance.__main__ import main as conformance_main

        sys.exit(conformance_main(argv[1:]))
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    if args.command == "fetch-model":
        print(models.default_model_path())
    elif args.command == "fetch-models":
        for path in models.fetch_all(args.models_dir):
            print(path)
    elif args.command == "serve":
        serve(args, engine_factory)


if __name__ == "__main__":
    main()
