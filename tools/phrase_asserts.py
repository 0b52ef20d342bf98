"""Count test asserts that check English phrases instead of codes, types and fields.

An assert counts as a *phrase assert* when it compares a string literal of two
or more words (letters and a space) by ``in``, ``not in``, ``==``, ``!=``,
``startswith`` or ``endswith`` - the shape of ``assert "no private key" in
str(err)``. ``pytest.raises(..., match="two words")`` counts too. Literal
single words (``"mtls_pop" in text``, codes, claim names) do not count: those
are codes and fields.

Of those, *error phrase asserts* read the text of an error: an exception's
``str()``/``message``/``cause``/``fix``/``reason``, an OAuth
``error_description``, a ``WWW-Authenticate`` challenge, captured stderr, a log
record, or ``raises(match=...)``. These are the ones to replace by a code, a
type or a field. The rest check what a person is shown (a panel's text, a
chart's label, a CLI's table) or that a secret is absent ("PRIVATE KEY"),
where the text is the behaviour under test.

    python3 tools/phrase_asserts.py [tests] [--list]

Prints ``phrase asserts P of A asserts (E read an error's text)`` last. ``--list`` prints each one
(file:line) first. Read-only; no package import.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

PHRASE = re.compile(r"[A-Za-z]{2,}[,.'-]?\s+[A-Za-z(\"'<{]")


def is_phrase(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(PHRASE.search(node.value))


def phrase_in(test: ast.AST) -> bool:
    for node in ast.walk(test):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(op, (ast.In, ast.NotIn, ast.Eq, ast.NotEq)) for op in node.ops):
                for side in sides:
                    if is_phrase(side) or (isinstance(side, (ast.JoinedStr, ast.Tuple, ast.List, ast.Set))
                                           and any(is_phrase(v) for v in ast.walk(side))):
                        return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("startswith", "endswith", "search", "match", "fullmatch") \
                and any(is_phrase(a) for a in node.args):
            return True
    return False


ERROR_TEXT = re.compile(r"\b(str|repr)\((err|error|exc|e|info\.value|refused|failure|problem)\b"
                        r"|\.(message|cause|fix|reason)\b|error_description|WWW-Authenticate"
                        r"|_reason\(|reasons\[|\breason\b|\.err\b|getMessage|\bchallenge\b")


def reads_error(node: ast.AST) -> bool:
    return bool(ERROR_TEXT.search(ast.unparse(node)))


def main(argv: list[str]) -> int:
    root = Path(next((a for a in argv if not a.startswith("-")), "tests"))
    listing = "--list" in argv
    total = phrases = errors = 0
    for path in sorted(root.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            hit = False
            if isinstance(node, ast.Assert):
                total += 1
                hit = phrase_in(node.test)
                on_error = hit and reads_error(node.test)
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "raises":
                hit = on_error = any(k.arg == "match" and is_phrase(k.value) for k in node.keywords)
                total += hit    # a raises(match=...) is an assert on the message
            if hit:
                phrases += 1
                errors += on_error
                if listing:
                    print(f"{path}:{node.lineno}{' error' if on_error else ''}")
    print(f"phrase asserts {phrases} of {total} asserts ({errors} read an error's text)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
