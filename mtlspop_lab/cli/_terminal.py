"""Text for terminals: untrusted characters shown, never obeyed.

A terminal obeys control characters: an escape sequence inside a token claim
or a certificate subject can move the cursor, clear a line and print
"BOUND" over "NOT BOUND". Every CLI verb passes untrusted text through
:func:`terminal_safe` before printing it.
"""

from __future__ import annotations

import unicodedata


def terminal_safe(text, *, keep_newlines: bool = False) -> str:
    """``text`` with every control or format character written as an escape (``\\x1b``, ``\\u202e``).

    C0/C1 controls (ESC, CR, BEL...), DEL and Unicode format characters
    (bidirectional overrides, zero-width characters) can rewrite what a
    terminal shows; line and paragraph separators can fake a line. Newlines
    are kept only where the caller composed them (``keep_newlines``).
    """
    out = []
    for ch in str(text):
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != "\t":
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
