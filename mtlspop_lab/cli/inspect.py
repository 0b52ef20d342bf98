"""``mtlspop-lab inspect TOKEN_OR_FILE --cert CERT``: is this token bound to this certificate?

Exit codes, for scripts and CI: 0 bound, 1 not bound (or, with ``--jwks``,
not valid), 2 bad input (unreadable token or certificate, wrong arguments).

TOKEN_OR_FILE is a file holding the token (or a token response JSON with an
``access_token``), ``-`` for standard input, or the token itself. Prefer a
file or ``-``: a token on the command line is visible to other local users in
the process list. Output never contains the token; add ``--claims`` for the
claims table.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from ..errors import ConfigurationError, LabError, TokenFormatError
from ..inspector import MAX_TOKEN_CHARS, check_binding, explain_claims, verify_token


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtlspop-lab inspect",
        description="Check a token's cnf.x5t#S256 binding against a certificate (RFC 8705).",
        epilog="Exit codes: 0 bound, 1 not bound (or not valid with --jwks), 2 bad input.")
    parser.add_argument("token", metavar="TOKEN_OR_FILE",
                        help="file with the token or a token response JSON, '-' for stdin, or the token")
    parser.add_argument("--cert", required=True, metavar="CERT",
                        help="the certificate: PEM or DER file (a chain: leaf first)")
    parser.add_argument("--claims", action="store_true", help="also print the claims explained")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.add_argument("--jwks", metavar="URL_OR_FILE",
                        help="also verify the signature with this JWKS (URL or JSON file)")
    parser.add_argument("--ca-bundle", metavar="PEM", help="CA bundle to trust for an https --jwks URL")
    parser.add_argument("--audience", help="expected aud (with --jwks)")
    parser.add_argument("--issuer", help="expected iss (with --jwks)")
    return parser


def _read_token(argument: str) -> object:
    """The token text (or a response dict) from '-', a file, or the argument itself."""
    if argument == "-":
        text = sys.stdin.read(MAX_TOKEN_CHARS + 1)
    else:
        text = argument
        try:
            path = Path(argument)
            is_file = len(argument) < 4096 and path.is_file()
        except (OSError, ValueError):
            is_file = False
        looks_like_path = (not is_file and not argument.startswith("eyJ") and len(argument) < 4096
                           and ("/" in argument or "\\" in argument
                                or argument.lower().endswith((".txt", ".json", ".jwt", ".token"))))
        if looks_like_path:
            raise TokenFormatError("The token file was not found (and the argument is not a token).",
                                   cause="The path is wrong.",
                                   fix="Check the path, or pass '-' and the token on standard input.",
                                   code="token_file_not_found")
        if is_file:
            try:
                with path.open("rb") as handle:
                    data = handle.read(MAX_TOKEN_CHARS + 1)
            except OSError:
                raise TokenFormatError("The token file cannot be read.",
                                       cause="Access denied or not a regular file.",
                                       fix="Check the file's permissions.") from None
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise TokenFormatError("The token file is not text.",
                                       cause="It is binary (a certificate? a PFX?).",
                                       fix="Save the access_token string (or the token response JSON) "
                                           "in the file.") from None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            response = json.loads(stripped)
        except (ValueError, RecursionError):
            raise TokenFormatError("The token input starts with '{' but is not valid JSON.",
                                   cause="A damaged token response.",
                                   fix="Save the token response as JSON, or the access_token alone.") from None
        return response
    return stripped


def main(argv: list[str] | None = None) -> int:
    """Run the verb; returns 0 bound, 1 not bound, 2 bad input."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        token = _read_token(args.token)
        verdict = check_binding(token, args.cert)
        table = explain_claims(token) if args.claims else None
    except LabError as exc:
        print(f"mtlspop-lab inspect: {exc}", file=sys.stderr)
        return 2
    valid = None
    if args.jwks:
        try:
            jwks_url = args.jwks if args.jwks.startswith(("http://", "https://")) else None
            keys = None if jwks_url else json.loads(Path(args.jwks).read_text())
        except (OSError, ValueError):
            print("mtlspop-lab inspect: the --jwks file cannot be read as JSON.", file=sys.stderr)
            return 2
        try:
            verify_token(token, keys, jwks_url=jwks_url, ca_bundle=args.ca_bundle,
                         audience=args.audience, issuer=args.issuer)
            valid = (True, "signature, times" + (", audience" if args.audience else "")
                     + (", issuer" if args.issuer else "") + " verified")
        except ConfigurationError as exc:  # a wrong option, not an invalid token
            print(f"mtlspop-lab inspect: {exc}", file=sys.stderr)
            return 2
        except LabError as exc:
            valid = (False, exc.message)
    if args.json:
        out = {"bound": verdict.bound, "expected": verdict.expected, "actual": verdict.actual,
               "reason": verdict.reason, "mistakes": list(verdict.mistakes), "fix": verdict.fix,
               "certificate_subject": verdict.certificate_subject, "notes": list(verdict.notes)}
        if valid is not None:
            out["valid"], out["validation"] = valid
        print(json.dumps(out, indent=2))
    else:
        print(verdict.to_text())
        if valid is not None:
            print(("✓ VALID: " if valid[0] else "✗ NOT VALID: ") + valid[1])
        if table is not None:
            print()
            print(f"Claims ({table.attrs['note']}):")
            for row in table.itertuples(index=False):
                when = f"  ({row.when}, {row.time_left})" if row.time_left else ""
                print(f"  {row.claim:<12} {row.value}{when}")
                print(textwrap.fill(row.meaning, width=100, initial_indent=" " * 15,
                                    subsequent_indent=" " * 15))
    if not verdict.bound or (valid is not None and not valid[0]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
