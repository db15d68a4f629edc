"""Argument types for the command line: each value is checked when the options are parsed, before any work,
and a bad one is refused by argparse with the allowed range in the message (exit status 2)."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["int_in", "float_in", "positive_int", "nonnegative_int", "positive_float", "unit_float",
           "existing_path", "judge", "judge_or_none", "output_dir", "output_file", "check_output_dir",
           "check_output_file", "parsed_by",
           "new_dirs_kept_on_success"]

_created: list[Path] | None = None  # in a command: the folders check_output_dir made for it, outermost first


def parsed_by(parse: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type from a library parser: its one-line error (a ValueError) becomes argparse's message.

    >>> parsed_by(float)("0.5")
    0.5
    """
    def parse_arg(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse_arg.__name__ = getattr(parse, "__name__", "value")
    return parse_arg


def int_in(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [lo, hi] (either end open when None)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{v} is out of range; allowed: {_range(lo, hi)}")
        return v
    parse.__name__ = "integer"
    return parse


def float_in(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
             hi_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in the interval from lo to hi (open ends when asked)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        bad = not math.isfinite(v)
        bad |= lo is not None and (v < lo or (lo_open and v == lo))
        bad |= hi is not None and (v > hi or (hi_open and v == hi))
        if bad:
            raise argparse.ArgumentTypeError(
                f"{text} is not allowed; expected a finite number {_range(lo, hi, lo_open, hi_open)}")
        return v
    parse.__name__ = "number"
    return parse


def _range(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"{'<' if hi_open else '<='} {hi:g}"


positive_int = int_in(1)
nonnegative_int = int_in(0)
positive_float = float_in(0, lo_open=True)
unit_float = float_in(0, 1)


def existing_path(text: str) -> str:
    """An argparse type: a file or folder that exists (an empty string is refused)."""
    if not text:
        raise argparse.ArgumentTypeError("empty path; give a file or folder")
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return text


def judge_help(what: str = "evaluator") -> str:
    """The help of an --evaluator option: the shipped judges by name, the default first, or a file."""
    from spnn.models import DEFAULT_JUDGE, EVALUATORS

    others = ", ".join(n for n in EVALUATORS if n != DEFAULT_JUDGE)
    return f"{what}: a shipped one by name ({DEFAULT_JUDGE}, the default; {others}) or a file"


def judge(text: str) -> str:
    """An argparse type: a shipped evaluator by name (`spnn.models.EVALUATORS`) or an existing file.

    >>> judge("r1")
    'r1'
    """
    from spnn.errors import CheckpointError
    from spnn.models import EVALUATORS, evaluator_path

    if not text:
        raise argparse.ArgumentTypeError(f"empty evaluator; give a shipped one's name ({', '.join(EVALUATORS)}) or "
                                         "a file")
    try:
        evaluator_path(text)
    except CheckpointError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def judge_or_none(text: str) -> str:
    """`judge`, or "none" for no evaluator."""
    return text if text == "none" else judge(text)


def check_output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder (or check it) and make sure files can be written into it, before any work.
    Folders it creates are removed again if the command fails before writing into them
    (`new_dirs_kept_on_success`)."""
    from spnn.errors import ConfigError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output folder {path} exists and is a file; choose another --out")
    try:
        missing = [p for p in (path, *path.parents) if not p.exists()]
        path.mkdir(parents=True, exist_ok=True)
        if _created is not None:
            _created.extend(reversed(missing))
        probe = path / f".spnn-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"cannot write into output folder {path} ({e.strerror or e}); choose another --out "
                          "or fix its permissions") from None
    return path


@contextmanager
def new_dirs_kept_on_success() -> Iterator[None]:
    """Run one command: if it fails, the folders `check_output_dir` created for it that are still empty are
    removed again, innermost first, so that a refused command leaves no empty output folder behind."""
    global _created
    _created = created = []
    try:
        yield
    except BaseException:
        for folder in reversed(created):
            with suppress(OSError):  # only an empty folder goes; one with files in it stays
                folder.rmdir()
        raise
    finally:
        _created = None


def check_output_file(path: str | os.PathLike) -> Path:
    """Check that ``path`` can be written as a file (its folder is created), before any work."""
    from spnn.errors import ConfigError

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"output file {path} is a folder; give a file name (e.g. {path / 'out.png'})")
    if path.suffix.lower() not in ("", ".png"):
        raise ConfigError(f"output file {path}: images are written as PNG; use a .png name")
    check_output_dir(path.parent if str(path.parent) else ".")
    return path


def check_safetensors_out(path: str | os.PathLike) -> Path:
    """Check that ``path`` names a .safetensors file that can be written (its folder is created), before any work."""
    from spnn.errors import ConfigError

    out = Path(path)
    if out.suffix != ".safetensors":
        raise ConfigError(f"--out {out}: give a file name ending in .safetensors")
    check_output_file(out.with_suffix(""))
    return out


def output_dir(text: str) -> str:
    """An argparse type for --out folders: not empty (checked for writing when the command starts)."""
    if not text:
        raise argparse.ArgumentTypeError("empty path; give an output folder")
    return text


output_file = output_dir
