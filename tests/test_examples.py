"""The examples the documentation includes run (tiny settings), and every module is in the API reference."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import spnn

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    out = subprocess.run([sys.executable, str(script), "--tiny"], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip(), "an example prints what it found"


def test_every_module_is_in_the_api_reference():
    listed = {line.split()[1] for line in (ROOT / "docs" / "api.md").read_text().splitlines()
              if line.startswith(":::")}
    modules = {m.name for m in pkgutil.walk_packages(spnn.__path__, "spnn.") if not m.name.startswith("spnn.cli")
               and m.name != "spnn.__main__"}  # the command line, not API
    assert modules - {"spnn.data", "spnn.diffusion", "spnn.training", "spnn.evaluation"} <= listed, \
        sorted(modules - listed)


def test_docs_pages_are_all_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert all(p in nav for p in pages), [p for p in pages if p not in nav]


def test_python_dash_m_spnn_is_the_command(tmp_path):
    """`python -m spnn` runs the same command line as the installed `spnn` (for src/ on PYTHONPATH)."""
    out = subprocess.run([sys.executable, "-m", "spnn", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and spnn.__version__ in out.stdout + out.stderr, out
    bad = subprocess.run([sys.executable, "-m", "spnn", "prior", "train", "--out", "x", "--oversample", "A=0"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2 and "NAME=K" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x").exists()  # refused before the output folder is made
