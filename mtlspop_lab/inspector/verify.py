"""Verifying a token: signature (RS/PS/ES, never none or HMAC), times, audience and issuer, with pyjwt.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from typing import Any
from urllib.parse import urlsplit

from ..certs.certificate import _shown as _shown_path
from ..certs.parse import _leaf
from ..errors import CertificateError, ConfigurationError, TokenValidationError
from ._text import _ago, _as_bytes, _clip, _fmt_time, _json_type, _utcnow
from .decode import _ASYMMETRIC_ALGS, DecodedToken, decode_token


# =====================================================================================
# Verification
# =====================================================================================
def verify_token(token: Any, keys: Any = None, *, jwks_url: str | None = None,
                 authority: Any = None, audience: Any = None, issuer: Any = None,
                 leeway: float = 60, algorithms: tuple | list | None = None,
                 ca_bundle: str | os.PathLike | None = None, timeout: float = 10,
                 now: _dt.datetime | float | None = None,
                 allow_http_loopback: bool = False) -> DecodedToken:
    """Verify signature, ``exp``/``nbf``/``iat`` (with ``leeway`` seconds), audience and issuer.

    The keys come from exactly one of: ``keys`` (a JWKS dict, one JWK dict, a
    public or private key object, a certificate in any form
    :func:`x5t_s256` accepts, or PEM public-key text), ``jwks_url`` (fetched
    with requests, ``verify=ca_bundle``, environment proxies and CA variables
    ignored) or ``authority`` (anything with ``.jwks`` and ``.issuer``, such
    as :class:`~mtlspop_lab.authority.LocalAuthority`; its issuer is then
    checked unless ``issuer`` is given). ``audience``/``issuer`` None means
    "not checked", and the result says so. ``jwks_url`` must be https (keys
    fetched in clear text can be swapped on the way); a plain ``http://`` URL
    on a loopback address is accepted only with ``allow_http_loopback=True``.

    ``alg: none`` and HMAC algorithms are refused before any key is touched
    (an HMAC "verified" with a public key is the classic confusion attack).
    Returns a :class:`DecodedToken` with ``verified=True``; every failure is
    a :class:`TokenValidationError` whose ``code`` says which check failed.
    """
    import jwt  # pyjwt: imported here so that decoding alone stays light

    decoded = decode_token(token)
    if isinstance(leeway, bool) or not isinstance(leeway, (int, float)) or not 0 <= leeway <= 86400:
        raise ConfigurationError("leeway must be a number of seconds between 0 and 86400.",
                                 cause=f"Got {_clip(repr(leeway), 40)}.",
                                 fix="Pass leeway=60 (a minute of clock skew) or similar.")
    if now is not None and (isinstance(now, bool) or not isinstance(now, (int, float, _dt.datetime))):
        raise ConfigurationError("now must be a datetime or a number of seconds since 1970.",
                                 cause=f"Got {type(now).__name__}.", fix="Leave now=None for the clock.")
    sources = sum(x is not None for x in (keys, jwks_url, authority))
    if sources != 1:
        raise ConfigurationError("verify_token needs exactly one of keys=, jwks_url= or authority=.",
                                 cause=f"{sources} key sources were given.",
                                 fix="Pass the issuer's JWKS (keys=...), its jwks_uri, or the authority.")
    alg = decoded.alg
    if alg.lower() == "none":
        raise TokenValidationError("The token is unsigned (alg: none) and is refused.",
                                   cause="An unsigned token proves nothing about who issued it; "
                                         "accepting it is a known attack.",
                                   fix="Only accept tokens signed by the issuer's published keys.",
                                   code="alg_none_refused")
    if alg.upper().startswith("HS"):
        raise TokenValidationError(f"The token claims an HMAC algorithm ({_clip(alg, 20)}) and is refused.",
                                   cause="Identity providers sign with asymmetric keys. An HMAC token "
                                         "checked with the issuer's public key as the secret is the "
                                         "algorithm-confusion attack: anyone can forge it.",
                                   fix="Only accept RS256/PS256/ES256-style tokens verified with the JWKS.",
                                   code="hmac_refused")
    allowed = tuple(algorithms) if algorithms else _ASYMMETRIC_ALGS
    if alg not in allowed:
        raise TokenValidationError(f"The token's algorithm {_clip(alg, 20)!r} is not allowed "
                                   f"(allowed: {', '.join(allowed)}).",
                                   cause="The verifier accepts only the algorithms it was told to.",
                                   fix="Pass algorithms=[...] if this algorithm is expected.",
                                   code="unsupported_algorithm")
    if authority is not None:
        jwks = getattr(authority, "jwks", None)
        if jwks is None:
            raise ConfigurationError("authority= needs an object with a .jwks dict (and .issuer).",
                                     cause=f"Got {type(authority).__name__} without .jwks.",
                                     fix="Pass a LocalAuthority, or keys=/jwks_url=.")
        if issuer is None:      # any of the authority's issuers: v1.0 and v2.0, of every tenant
            issuer = getattr(authority, "issuers", None) or getattr(authority, "issuer", None)
        candidates = _keys_from_jwks(jwks, decoded)
        source = "the authority's JWKS"
    elif jwks_url is not None:
        candidates = _keys_from_jwks(_fetch_jwks(jwks_url, ca_bundle, timeout, allow_http_loopback), decoded)
        source = "the JWKS at the given URL"
    else:
        candidates, source = _keys_from_argument(keys, decoded)

    family = alg[:2]
    usable = [(kid, key) for kid, key in candidates if _key_family(key) == family or
              (family == "PS" and _key_family(key) == "RS")]
    if not usable:
        kinds = sorted({_key_family(key) or "unknown" for _kid, key in candidates})
        raise TokenValidationError(f"No {family} key in {source} fits the token's algorithm {alg} "
                                   f"(keys found: {', '.join(kinds) or 'none'}).",
                                   cause="The token and the keys disagree on the key type "
                                         "(an RSA algorithm needs an RSA key, ES* an EC key).",
                                   fix="Verify against the issuer that signed the token.",
                                   code="key_type_mismatch")
    options = {"verify_signature": True, "verify_exp": False, "verify_nbf": False,
               "verify_iat": False, "verify_aud": audience is not None,
               "verify_iss": issuer is not None}
    last_error: Exception | None = None
    for kid, key in usable:
        try:
            jwt.decode(decoded.token(reveal=True), key=key, algorithms=[alg], options=options,  # type: ignore[arg-type]
                       audience=audience, issuer=issuer)
        except jwt.InvalidSignatureError as exc:
            last_error = exc
            continue
        except jwt.InvalidAudienceError:
            raise TokenValidationError(
                f"The token's audience {_clip(str(decoded.audience), 120)!r} is not the expected "
                f"{_clip(str(audience), 120)!r}.",
                cause="The token was issued for another resource.",
                fix="Acquire a token with scope '<resource>/.default' for this resource.",
                code="invalid_audience") from None
        except jwt.InvalidIssuerError:
            raise TokenValidationError(
                f"The token's issuer {_clip(str(decoded.issuer), 120)!r} is not the expected "
                f"{_clip(str(issuer), 120)!r}.",
                cause="Another authority or tenant issued the token (v1 and v2 issuers differ too).",
                fix="Verify against the authority and tenant that issued it.",
                code="invalid_issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenValidationError(f"The token has no {exc.claim!r} claim to check.",
                                       cause="The check was asked for but the claim is absent.",
                                       fix="Do not pass that check, or use a token that carries it.",
                                       code="missing_claim") from None
        except Exception as exc:  # InvalidKeyError, DecodeError, anything the library raises
            raise TokenValidationError(f"The token cannot be verified ({type(exc).__name__}).",
                                       cause="The key or the token is unusable with this algorithm.",
                                       fix="Check the key source and the token's alg.",
                                       code="verification_failed") from None
        _check_times(decoded, leeway, now)
        checked_issuer = decoded.issuer if isinstance(issuer, (list, tuple)) else issuer   # the one that matched
        verification = {"alg": alg, "kid": kid, "key_source": source, "leeway": leeway,
                        "audience": audience, "issuer": checked_issuer}
        return DecodedToken(header=decoded.header, claims=decoded.claims,
                            signature_present=decoded.signature_present,
                            signature_length=decoded.signature_length, verified=True,
                            verification=verification, token_type=decoded.token_type,
                            _token=decoded.token(reveal=True))
    tried = ", ".join(str(kid) for kid, _ in usable)
    raise TokenValidationError(f"The signature does not verify with {source} (key(s) tried: {tried}).",
                               cause="The token was altered, or another key (another issuer, a "
                                     "rotated key) signed it." if last_error else "No key matched.",
                               fix="Verify against the issuer's current JWKS; never trust an "
                                   "altered token.", code="invalid_signature")


def _check_times(decoded: DecodedToken, leeway: float, now: Any) -> None:
    if isinstance(now, _dt.datetime):
        moment = now.timestamp()
    elif now is None:
        moment = _utcnow().timestamp()
    else:
        moment = float(now)
    claims = decoded.claims
    values = {}
    for name in ("exp", "nbf", "iat"):
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise TokenValidationError(f"The {name} claim is not a number of seconds ({_json_type(value)}).",
                                       cause="NumericDate claims are JSON numbers (RFC 7519 section 2).",
                                       fix="The issuer must write times as numbers.",
                                       code="bad_time_claim")
        values[name] = float(value)
    if "exp" not in values:
        raise TokenValidationError("The token has no exp claim: it would never expire.",
                                   cause="Access tokens always carry an expiry.",
                                   fix="Refuse tokens without exp.", code="missing_exp")
    if moment >= values["exp"] + leeway:
        raise TokenValidationError(
            f"The token expired at {_fmt_time(values['exp'])} ({_ago(moment - values['exp'])}; "
            f"leeway {leeway:g} s).",
            cause="Its lifetime is over.", fix="Acquire a new token (msal does so when the cached one expires).",
            code="token_expired")
    if "nbf" in values and moment < values["nbf"] - leeway:
        raise TokenValidationError(
            f"The token is not valid before {_fmt_time(values['nbf'])} (leeway {leeway:g} s).",
            cause="Its nbf is in the future: the issuer's or this machine's clock is off.",
            fix="Check both clocks (NTP); wait until nbf.", code="token_not_yet_valid")
    if "iat" in values and moment < values["iat"] - leeway:
        raise TokenValidationError(
            f"The token claims to be issued in the future, at {_fmt_time(values['iat'])} "
            f"(leeway {leeway:g} s).",
            cause="The issuer's or this machine's clock is off.",
            fix="Check both clocks (NTP).", code="token_issued_in_future")


def _key_family(key: Any) -> str | None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if isinstance(key, rsa.RSAPublicKey):
        return "RS"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ES"
    return None


def _keys_from_jwks(jwks: Any, decoded: DecodedToken) -> list[tuple[str | None, Any]]:
    """Public keys from a JWKS (or one JWK), narrowed to the token's kid when it has one."""
    import jwt

    if isinstance(jwks, dict) and "kty" in jwks:
        jwks = {"keys": [jwks]}
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise TokenValidationError("The key set is not a JWKS (a JSON object with a 'keys' list).",
                                   cause="The jwks_uri answered something else, or the wrong dict was passed.",
                                   fix="Use the issuer's jwks_uri from its OpenID configuration.",
                                   code="bad_jwks")
    keys = []
    for jwk in jwks["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        if str(jwk.get("kty")).lower() == "oct":
            continue  # symmetric keys never verify an identity provider's token
        try:
            keys.append((jwk.get("kid"), jwt.PyJWK(jwk).key))
        except Exception:
            continue
    if not keys:
        raise TokenValidationError("The JWKS has no usable signing key.",
                                   cause="It is empty or holds only unsupported keys.",
                                   fix="Check the jwks_uri.", code="no_keys")
    kid = decoded.kid
    if kid is not None:
        matching = [(k, key) for k, key in keys if k == kid]
        if not matching:
            raise TokenValidationError(f"No key with kid {_clip(str(kid), 80)!r} in the JWKS "
                                       f"(kids: {', '.join(str(k) for k, _ in keys[:10])}).",
                                       cause="Another issuer signed the token, or its keys rotated.",
                                       fix="Verify against the issuer that signed the token; refresh "
                                           "the JWKS.", code="key_not_found")
        return matching
    return keys


def _keys_from_argument(keys: Any, decoded: DecodedToken) -> tuple[list, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(keys, dict):
        return _keys_from_jwks(keys, decoded), "the JWKS given"
    if isinstance(keys, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        return [(None, keys.public_key())], "the key given"
    if isinstance(keys, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        return [(None, keys)], "the key given"
    if isinstance(keys, (str, bytes)) and (b"PUBLIC KEY-----" in _as_bytes(keys)):
        try:
            return [(None, serialization.load_pem_public_key(_as_bytes(keys)))], "the public key given"
        except Exception:
            raise TokenValidationError("The public key PEM cannot be read.", code="bad_key",
                                       fix="Pass the issuer's public key or its JWKS.") from None
    if isinstance(keys, (str, bytes)) and b"PRIVATE KEY-----" in _as_bytes(keys):
        raise ConfigurationError("A private key was given to verify with; verification needs only "
                                 "the public key.", cause="Private keys do not belong in verifiers.",
                                 fix="Pass the public key, certificate or JWKS.")
    try:
        leaf = _leaf(keys)
    except CertificateError as exc:
        raise ConfigurationError(f"keys= is not a JWKS, a key or a certificate: {exc.message}",
                                 fix="Pass a JWKS dict, a public key or the signing certificate.") from None
    return [(None, leaf.x509.public_key())], f"the certificate {leaf.subject}"


_LOOPBACK_HOSTS = ("localhost", "::1")


def _check_jwks_url(url: Any, allow_http_loopback: bool) -> None:
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ConfigurationError("jwks_url must be an https URL.", fix="Pass the jwks_uri.",
                                 code="invalid_jwks_url")
    if url.startswith("https://"):
        return
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    loopback = host in _LOOPBACK_HOSTS or re.fullmatch(r"127(\.\d{1,3}){3}", host) is not None
    if not (allow_http_loopback and loopback):
        raise ConfigurationError(f"The JWKS URL {_clip(url, 120)} is plain http.",
                                 cause="Keys fetched without TLS can be replaced on the way, and then any "
                                       "token verifies.",
                                 fix="Use the issuer's https jwks_uri; for a test server on this machine, "
                                     "pass allow_http_loopback=True (CLI: --allow-http-loopback).",
                                 code="insecure_jwks_url")


def _fetch_jwks(url: str, ca_bundle: Any, timeout: float, allow_http_loopback: bool = False) -> dict:
    import requests

    _check_jwks_url(url, allow_http_loopback)
    if ca_bundle is not None and not (isinstance(ca_bundle, (str, os.PathLike))
                                      and os.path.isfile(ca_bundle)):
        raise ConfigurationError("ca_bundle must be the path of an existing PEM file.",
                                 cause=f"Got {_shown_path(ca_bundle) if isinstance(ca_bundle, (str, os.PathLike)) else type(ca_bundle).__name__}.",
                                 fix="Pass the CA bundle that verifies the JWKS server (e.g. authority.ca_bundle).")
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies must not override verify=
    try:
        response = session.get(url, verify=os.fspath(ca_bundle) if ca_bundle else True, timeout=timeout,
                               allow_redirects=False)    # a redirect could lead to plain http
    except (requests.RequestException, OSError, ValueError) as exc:
        raise TokenValidationError(f"The JWKS could not be fetched from {_clip(url, 200)} "
                                   f"({type(exc).__name__}).",
                                   cause="The server is unreachable, slow, or its TLS certificate is "
                                         "not trusted by ca_bundle.",
                                   fix="Check the URL and pass ca_bundle= for a private CA.",
                                   code="jwks_fetch_failed") from None
    finally:
        session.close()
    if response.status_code != 200:
        raise TokenValidationError(f"The JWKS endpoint answered HTTP {response.status_code}.",
                                   cause="Wrong URL or tenant.", fix="Use the jwks_uri from discovery.",
                                   code="jwks_fetch_failed")
    try:
        return response.json()
    except ValueError:
        raise TokenValidationError("The JWKS endpoint did not answer JSON.",
                                   cause="Wrong URL (an HTML page?).", fix="Use the jwks_uri from discovery.",
                                   code="bad_jwks") from None


