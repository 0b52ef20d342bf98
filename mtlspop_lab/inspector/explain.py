"""Claims in plain words: a pandas table of every header parameter and claim.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from . import glossary as _claims
from ._text import _as_time, _display_value, _duration, _json_type, _utcnow
from .decode import decode_token


# =====================================================================================
# Explanation
# =====================================================================================
def explain_claims(token: Any, *, now: _dt.datetime | None = None):
    """A pandas DataFrame: one row per header parameter and claim, in plain words.

    Columns: ``claim``, ``value``, ``meaning``, ``when`` (UTC, for time
    claims), ``time_left`` (e.g. "in 59 min", "expired 3 min ago"), ``part``
    ("header" or "payload"). ``cnf`` gets the binding explained. The table's
    ``attrs["verified"]`` says whether the token was verified (decoding alone
    never verifies).
    """
    from .frames import WrappedFrame  # pandas: heavy, loaded only when a table is asked for

    decoded = decode_token(token)
    moment = now or _utcnow()
    rows = []
    for name, value in decoded.header.items():
        rows.append({"claim": name, "value": _display_value(value),
                     "meaning": _claims.meaning_of(name, header=True), "when": "", "time_left": "",
                     "part": "header"})
    for name, value in decoded.claims.items():
        when, left = "", ""
        if name in _claims.TIME_CLAIMS:
            t = _as_time(value)
            if t is None:
                when = "not a valid time"
            else:
                when = f"{t:%Y-%m-%d %H:%M:%S} UTC"
                left = _time_left(name, (t - moment).total_seconds())
        meaning = _claims.meaning_of(name)
        if name == "cnf":
            meaning = _cnf_meaning(value) + " " + meaning
        elif name == "ver":
            meaning = _claims.version_of(decoded.claims) + " " + meaning
        rows.append({"claim": name, "value": _display_value(value), "meaning": meaning,
                     "when": when, "time_left": left, "part": "payload"})
    if decoded.verified:
        v = decoded.verification or {}
        state = (f"VERIFIED with {v.get('key_source')} (kid {v.get('kid')}), leeway {v.get('leeway')} s, "
                 f"audience {'checked' if v.get('audience') is not None else 'not checked'}, "
                 f"issuer {'checked' if v.get('issuer') is not None else 'not checked'}.")
    else:
        state = "NOT verified: decoding reads the claims and checks nothing. Use verify_token."
    rows.append({"claim": "(signature)", "value": decoded._signature_text(), "meaning": state,
                 "when": "", "time_left": "", "part": "signature"})
    frame = WrappedFrame(rows, columns=["claim", "value", "meaning", "when", "time_left", "part"])
    frame.attrs["verified"] = decoded.verified
    frame.attrs["note"] = ("signature verified" if decoded.verified
                           else "decoded only: the signature was NOT verified")
    return frame


def _cnf_meaning(cnf: Any) -> str:
    if not isinstance(cnf, dict):
        return f"This cnf is a {_json_type(cnf)}, not an object: it binds nothing."
    parts = [f"{k}: {_claims.CNF_MEMBER_MEANINGS[k]}." for k in cnf if k in _claims.CNF_MEMBER_MEANINGS]
    return " ".join(parts) if parts else "This cnf has no member the lab knows."


def _time_left(name: str, seconds: float) -> str:
    if name == "exp":
        return f"expires in {_duration(seconds)}" if seconds > 0 else f"expired {_duration(-seconds)} ago"
    if name == "nbf":
        return f"valid in {_duration(seconds)}" if seconds > 0 else f"valid since {_duration(-seconds)}"
    return f"in {_duration(seconds)}" if seconds > 0 else f"{_duration(-seconds)} ago"


