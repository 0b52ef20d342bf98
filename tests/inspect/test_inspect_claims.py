"""explain_claims: a table of claims in plain words, with readable times."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from mtlspop_lab.inspector import explain_claims, verify_token


def test_table_shape_and_meanings(make_token, client_cert):
    table = explain_claims(make_token({"x5t#S256": client_cert.x5t_s256}, xms_custom="v", custom="c"))
    assert list(table.columns) == ["claim", "value", "meaning", "when", "time_left", "part"]
    rows = table.set_index("claim")
    assert rows.loc["alg", "part"] == "header" and rows.loc["aud", "part"] == "payload"
    assert "Tenant" in rows.loc["tid", "meaning"]
    assert "Object id" in rows.loc["oid", "meaning"]
    assert "application" in rows.loc["azp", "meaning"] and "application" in rows.loc["appid", "meaning"]
    assert "'app'" in rows.loc["idtyp", "meaning"]
    assert "Managed identity resource id" in rows.loc["xms_mirid", "meaning"]
    assert "xms_*" in rows.loc["xms_custom", "meaning"]
    assert "Not a registered" in rows.loc["custom", "meaning"]
    assert "RFC 8705" in rows.loc["cnf", "meaning"] and "DER" in rows.loc["cnf", "meaning"]
    assert client_cert.x5t_s256 in rows.loc["cnf", "value"]
    assert table.attrs["verified"] is False and "NOT verified" in table.attrs["note"]
    assert "NOT verified" in rows.loc["(signature)", "meaning"]  # the display says it too
    assert "256 bytes (not shown)" in rows.loc["(signature)", "value"]


def test_times_are_human_with_time_left(make_token):
    now = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    stamp = int(now.timestamp())
    table = explain_claims(make_token(iat=stamp - 300, nbf=stamp - 300, exp=stamp + 3540),
                           now=now).set_index("claim")
    assert table.loc["exp", "when"] == "2030-01-01 12:59:00 UTC"
    assert table.loc["exp", "time_left"] == "expires in 59 min"
    assert table.loc["iat", "time_left"] == "5 min ago"
    assert table.loc["nbf", "time_left"] == "valid since 5 min"
    later = explain_claims(make_token(exp=stamp - 90), now=now).set_index("claim")
    assert later.loc["exp", "time_left"] == "expired 1 min 30 s ago"
    broken = explain_claims(make_token(exp="never", iat=10 ** 30), now=now).set_index("claim")
    assert broken.loc["exp", "when"] == "not a valid time" and broken.loc["iat", "when"] == "not a valid time"


def test_verified_token_says_so(make_token, rsa_key):
    table = explain_claims(verify_token(make_token(), rsa_key.public_key()))
    assert table.attrs["verified"] is True
    assert table.set_index("claim").loc["(signature)", "meaning"].startswith("VERIFIED")


def test_cnf_variants_are_explained(make_token):
    rows = explain_claims(make_token({"jkt": "abc"})).set_index("claim")
    assert "DPoP" in rows.loc["cnf", "meaning"]
    rows = explain_claims(make_token("not-an-object")).set_index("claim")
    assert "binds nothing" in rows.loc["cnf", "meaning"]


def test_importing_the_inspector_does_not_load_pandas():
    code = "import sys, mtlspop_lab.inspector; print('pandas' in sys.modules, 'jwt' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60).stdout.split()
    assert out == ["False", "False"]
