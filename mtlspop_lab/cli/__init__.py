"""``mtlspop-lab``: one command, a few verbs, each owned by the module that does the work.

    mtlspop-lab demo      run every identity and flow on the embedded authority, print a table
    mtlspop-lab serve     run the embedded authority as a standalone process for curl/msal
    mtlspop-lab inspect   check a token's binding against a certificate
    mtlspop-lab bench     run the latency experiments, write CSV and charts

This file only dispatches: each verb's arguments and behaviour live beside its
logic, so ``python -m mtlspop_lab.<module>`` and the CLI can never disagree.
Exit code 2 means bad input for every verb: a ``LabError`` or an input that
exhausts a parser is reported in one escaped line, never as a traceback.
"""

from __future__ import annotations

import importlib
import sys

from ..errors import LabError
from ._terminal import terminal_safe

VERBS = {
    "demo": ("mtlspop_lab.cli.demo", "run every identity and flow on the embedded authority"),
    "serve": ("mtlspop_lab.cli.serve", "run the embedded authority as a standalone process"),
    "inspect": ("mtlspop_lab.cli.inspect", "check a token's cnf binding against a certificate"),
    "bench": ("mtlspop_lab.cli.bench", "measure vanilla vs two-leg, cache hits, regions, parallelism"),
}


def _usage() -> str:
    lines = ["usage: mtlspop-lab VERB [options]", "", "verbs:"]
    lines += [f"  {verb:<8} {text}" for verb, (_, text) in VERBS.items()]
    lines += ["", "Run 'mtlspop-lab VERB --help' for a verb's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to ``<module>.main(argv)``; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    verb, rest = args[0], args[1:]
    if verb not in VERBS:
        print(f"mtlspop-lab: unknown verb {verb!r}.\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[verb][0])
    try:
        return int(module.main(rest) or 0)
    except LabError as exc:         # bad input or settings a verb did not report itself: exit 2, no traceback
        print(f"mtlspop-lab {verb}: {terminal_safe(str(exc), keep_newlines=True)}", file=sys.stderr)
        return 2
    except (RecursionError, MemoryError, OverflowError) as exc:
        print(f"mtlspop-lab {verb}: the input exhausts a parser ({type(exc).__name__}).", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
