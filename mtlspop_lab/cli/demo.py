"""``mtlspop-lab demo``: every identity and flow against the embedded authority, in one table.

    mtlspop-lab demo [--delay MS] [--json]

The matrix itself is :func:`mtlspop_lab.workshop.demo.run_matrix`.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..authority import LocalAuthority
from ..workshop.demo import run_matrix


def format_table(rows: list[dict]) -> str:
    headers = ["identity", "flow", "token_type", "source", "round_trips", "ms", "binding", "api"]
    widths = {h: max(len(h), *(len(str(r[h])) for r in rows)) for h in headers}
    line = "  ".join(f"{h:<{widths[h]}}" for h in headers)
    out = [line, "  ".join("-" * widths[h] for h in headers)]
    out += ["  ".join(f"{str(r[h]):<{widths[h]}}" for h in headers) for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mtlspop-lab demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=0.0, help="ms injected per round trip (all listeners)")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args(argv)
    with LocalAuthority() as authority:
        if args.delay:
            authority.set_delay(args.delay, listener="all")
        rows = run_matrix(authority)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"mtlspop-lab demo: embedded authority, {args.delay:g} ms injected per round trip\n")
        print(format_table(rows))
        print("\nround_trips: HTTP exchanges made for this token (FIC: leg 1 + leg 2); "
              "source 'cache': no request reached the authority.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
