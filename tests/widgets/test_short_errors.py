"""A LabError raised in a cell shows what happened / cause / fix, not a traceback through the lab.

Plain IPython (a real ``ipython`` process) and a Jupyter kernel (nbclient) both use the
error's ``_render_traceback_``; the kernel also shows the HTML card.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import mtlspop_lab as lab
from mtlspop_lab import _html

ROOT = Path(__file__).resolve().parents[2]
CELL = "import mtlspop_lab as lab\nlab.decode_token('not-a-token')\n"


def test_the_hook_returns_the_three_lines_and_a_way_to_the_traceback():
    error = lab.TokenFormatError("bad input", cause="a cause", fix="a fix", code="some_code")
    lines = error._render_traceback_()
    text = "\n".join(lines)
    assert "TokenFormatError [some_code]" in text and "a cause" in text and "a fix" in text
    assert "lab.show_traceback()" in text and "Traceback" not in text
    assert "mtlspop-error" in error._repr_html_()


def test_show_traceback_prints_every_frame(capsys):
    try:
        lab.decode_token("not-a-token")
    except lab.LabError as error:
        lab.show_traceback(error)
    out = capsys.readouterr().out
    assert "Traceback (most recent call last)" in out and "decode.py" in out


def test_plain_ipython_shows_the_short_form():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", "-c", CELL],
                          capture_output=True, text=True, env=env, timeout=120)
    shown = done.stdout + done.stderr
    assert "TokenFormatError" in shown and "What to do" in shown
    assert "Traceback (most recent call last)" not in shown and "decode.py" not in shown


def test_a_kernel_shows_the_card_and_a_short_error():
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True)
    client.execute(env=env)
    outputs = nb.cells[0].outputs
    cards = [o for o in outputs if o.output_type == "display_data" and "text/html" in o.data]
    errors = [o for o in outputs if o.output_type == "error"]
    assert cards and "mtlspop-error" in cards[0].data["text/html"]
    assert errors and len(errors[0].traceback) <= 4
    assert errors[0].ename == "TokenFormatError"
    assert not any("decode.py" in line for line in errors[0].traceback)
    assert _html.error_card(lab.TokenFormatError("x")).count("What to do") == 1
