"""How much memory does each notebook's kernel hold after Run All? (target: <= 200 MB each)

A workshop room on Binder has 1-2 GB per person; every open notebook is a kernel with a local
authority in it. This script runs each notebook top to bottom in a fresh python3 kernel
(nbclient, a temporary copy, outputs never written back), then asks the kernel for its
resident memory (VmRSS; peak VmHWM) and prints, side by side, the Run All time, the memory
and its ratio to the 200 MB target. It asserts nothing: memory depends on the Python build
and the libraries installed.

    python3 benchmarks/bench_notebook_memory.py [--notebooks 00 01 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
TARGET_MB = 200

_MEASURE = """
import json as _json, resource as _resource
def _status(field):
    try:
        with open("/proc/self/status") as _f:
            for _line in _f:
                if _line.startswith(field + ":"):
                    return int(_line.split()[1]) / 1024
    except OSError:
        return None
_peak = _status("VmHWM") or _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024
print("MEMORY " + _json.dumps({"rss_mb": _status("VmRSS"), "peak_mb": _peak}))
"""


def measure(name: str, workdir: Path) -> dict:
    shutil.copytree(ROOT / "notebooks", workdir, dirs_exist_ok=True)
    nb = nbformat.read(workdir / f"{name}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_MEASURE))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    marks: dict = {}
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(workdir)}},
                            on_cell_start=lambda cell, cell_index: marks.setdefault("first", time.perf_counter()))
    started = time.perf_counter()
    client.execute(env=env, cwd=str(workdir))
    # Run All = from the first cell to the end (the measuring cell's own time is negligible);
    # the kernel's start-up is reported apart
    elapsed = time.perf_counter() - marks.get("first", started)
    startup = marks.get("first", started) - started
    errors = sum(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    text = next(o["text"] for o in nb.cells[-1].outputs if o.get("text", "").startswith("MEMORY "))
    found = json.loads(text[len("MEMORY "):])
    return {"notebook": name, "run_all_s": elapsed, "kernel_start_s": startup, "errors": errors, **found}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", help="prefixes such as 00 04 (default: all)")
    args = parser.parse_args(argv)
    names = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    if args.notebooks:
        names = [n for n in names if any(n.startswith(prefix) for prefix in args.notebooks)]
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix="mtlspop-nbmem-") as folder:
            rows.append(measure(name, Path(folder) / "nb"))
        row = rows[-1]
        print(f"{row['notebook']:<24} Run All {row['run_all_s']:5.1f} s (+{row['kernel_start_s']:.1f} s kernel start)   RSS {row['rss_mb']:6.1f} MB "
              f"(peak {row['peak_mb']:6.1f} MB)   RSS / {TARGET_MB} MB target = {row['rss_mb'] / TARGET_MB:4.2f}"
              + (f"   {row['errors']} error output(s)" if row["errors"] else ""), flush=True)
    total = sum(r["rss_mb"] for r in rows)
    print(f"{'all notebooks open':<24} {total:.0f} MB in {len(rows)} kernels "
          f"(Binder: 1-2 GB; shut a kernel down when its notebook is done)")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
