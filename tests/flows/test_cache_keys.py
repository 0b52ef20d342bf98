"""The binding-aware cache key and freshness: the exact edges (issue 19).

A key names where a token may be reused: authority, client, scope, token
type and, for PoP, the binding certificate's x5t#S256. Scopes and token
types are case-insensitive (Entra treats ``https://Graph.Microsoft.com/.default``
and the lower-case form alike), certificates are not.
"""

from __future__ import annotations

import datetime as dt

import pytest

from mtlspop_lab.certs import Certificate
from mtlspop_lab.flows import CacheKey, TokenCache, TokenResult

SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture(scope="module")
def cert():
    return Certificate.create_self_signed("CN=cache-keys")


def _result(token_type="Bearer", cert=None, seconds=3600.0, token="t", refresh_in=None):
    now = dt.datetime.now(dt.timezone.utc)
    return TokenResult(access_token=token, token_type=token_type, expires_on=now + dt.timedelta(seconds=seconds),
                       binding_certificate=cert.public_only() if cert else None,
                       refresh_on=now + dt.timedelta(seconds=refresh_in) if refresh_in is not None else None)


def test_scope_and_token_type_case_do_not_split_the_cache(cert):
    upper = CacheKey("auth", "client", "https://Graph.Microsoft.COM/.default", "Bearer")
    lower = CacheKey("auth", "client", SCOPE, "bearer")
    assert upper == lower and hash(upper) == hash(lower)
    assert upper.scope == SCOPE and upper.token_type == "bearer"
    pop = CacheKey("auth", "client", SCOPE.upper(), "MTLS_POP", cert.x5t_s256)
    assert pop == CacheKey("auth", "client", SCOPE, "mtls_pop", cert.x5t_s256) and pop.token_type == "mtls_pop"
    cache = TokenCache()
    cache.put(upper, _result(token="one"))
    assert cache.get(lower).access_token == "one" and len(cache) == 1


def test_the_binding_certificate_thumbprint_is_compared_exactly(cert):
    key = CacheKey("auth", "client", SCOPE, "mtls_pop", cert.x5t_s256)
    other_case = CacheKey("auth", "client", SCOPE, "mtls_pop", cert.x5t_s256.swapcase())
    assert key != other_case
    cache = TokenCache()
    cache.put(key, _result("mtls_pop", cert))
    assert cache.get(other_case) is None
    with pytest.raises(ValueError):
        cache.put(other_case, _result("mtls_pop", cert))        # the result is bound to another thumbprint


def test_every_part_of_the_key_matters(cert):
    base = dict(authority="auth", client="client", scope=SCOPE, token_type="Bearer")
    key = CacheKey(**base)
    for name, value in (("authority", "auth2"), ("client", "client2"), ("scope", "api://other/.default")):
        assert CacheKey(**dict(base, **{name: value})) != key
    assert CacheKey("auth", "client", SCOPE, "mtls_pop", cert.x5t_s256) != key


def test_put_refuses_a_result_of_the_other_type(cert):
    cache = TokenCache()
    with pytest.raises(ValueError):
        cache.put(CacheKey("a", "c", SCOPE, "mtls_pop", cert.x5t_s256), _result("Bearer"))
    with pytest.raises(ValueError):       # a PoP label without a binding certificate
        cache.put(CacheKey("a", "c", SCOPE, "mtls_pop", cert.x5t_s256), _result("mtls_pop"))
    cache.put(CacheKey("a", "c", SCOPE, "Bearer"), _result("BEARER"))          # the label's case is no reason
    cache.put(CacheKey("a", "c", SCOPE, "mtls_pop", cert.x5t_s256), _result("MTLS_POP", cert))
    assert len(cache) == 2


def test_freshness_edges():
    cache = TokenCache(refresh_margin_s=300)
    now = dt.datetime.now(dt.timezone.utc).timestamp()
    result = _result(seconds=1000)
    expires = result.expires_on.timestamp()
    assert cache.state(None) == "absent"
    assert cache.state(result, now=expires) == "expired"                 # at exp: already expired
    assert cache.state(result, now=expires - 0.001) == "aging"
    assert cache.state(result, now=expires - 299.999) == "aging"
    assert cache.state(result, now=expires - 300) == "fresh"            # exactly the margin left: still fresh
    assert cache.state(result, now=expires + 5) == "expired"
    early = _result(seconds=3600, refresh_in=10)                           # the server's refresh_in
    assert cache.state(early, now=now) == "fresh"
    assert cache.state(early, now=early.refresh_on.timestamp()) == "aging"
    assert cache.state(early, now=early.refresh_on.timestamp() - 1) == "fresh"
