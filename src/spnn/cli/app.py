"""`spnn app`: the interactive editor in the browser (the ``app`` extra)."""

from __future__ import annotations

import argparse

from spnn.cli.args import existing_path, int_in, judge_help, judge_or_none
from spnn.cli.device import device_of, device_option


def cmd_app(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError:
        from spnn.errors import ConfigError

        raise ConfigError("spnn app needs gradio: pip install 'spnn[app]'") from None
    from spnn.app import EditorModels, launch

    models = EditorModels(args.spnn, args.prior, args.evaluator, device=device_of(args))
    print(f"spnn app: http://{args.host}:{args.port} (Ctrl+C to stop)", flush=True)
    launch(models, host=args.host, port=args.port, steps=args.steps)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("app", help="interactive editor in the browser (pip install 'spnn[app]')")
    p.add_argument("--spnn", type=existing_path, help="SPNN (default: the shipped avatar SPNN)")
    p.add_argument("--prior", type=existing_path, help="prior (default: the shipped avatar prior)")
    p.add_argument("--evaluator", type=judge_or_none,
                   help=judge_help("evaluator for the reports") + ", or 'none'")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int_in(1, 65535), default=7860)
    p.add_argument("--steps", type=int_in(1, 1000), default=100, help="default sampling steps in the page")
    device_option(p)
    p.set_defaults(func=cmd_app)
