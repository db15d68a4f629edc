"""Entry point of the `spnn` command.

One error path: every error of spnn's own types (and file-system errors) prints
``spnn: error: <what is wrong>; <how to fix it>`` and exits with status 2, without a traceback;
anything else is reported as an internal error (status 1). ``--debug`` (or ``SPNN_DEBUG=1``) shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from spnn.cli.args import new_dirs_kept_on_success, positive_int
from spnn.errors import SPNNError

COMMAND_MODULES = ["network", "data", "train", "evaluator", "prior", "tasks", "demo", "emulator", "app"]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from spnn import __version__

    parser = argparse.ArgumentParser(prog="spnn", description="Surjective pseudo-invertible networks")
    parser.add_argument("--version", action="version", version=f"spnn {__version__}")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"spnn.cli.{name}").register(sub)
    return parser


def _fail(message: str, status: int) -> int:
    print(f"spnn: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("SPNN_DEBUG", "") not in ("", "0")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        with new_dirs_kept_on_success():  # a failed command leaves no empty output folder behind
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        return _fail("interrupted; finished work (checkpoints, written images) is kept and a rerun resumes", 130)
    except SPNNError as e:
        if debug:
            raise
        return _fail(str(e), 2)
    except OSError as e:
        if debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        return _fail(f"{where}{e.strerror or e}; check the path and its permissions", 2)
    except Exception as e:  # noqa: BLE001 - the last line of defence: no traceback reaches a user
        if debug:
            raise
        return _fail(f"internal error ({type(e).__name__}: {e}); rerun with --debug for the traceback and "
                     "report it", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
