"""TokenResult: what a flow returns, shaped like MSAL.NET's AuthenticationResult.

``token_type`` (``"mtls_pop"`` or ``"Bearer"``) and ``binding_certificate``
(the certificate the token is bound to, public part only; None for Bearer)
are the two fields the guide's code checks; ``source`` says whether the token
came from the identity provider or the cache (msal's ``token_source``);
``round_trips`` are the timed HTTP exchanges this acquisition made.

When several threads ask for the same token at once, one request is made
(single flight): the thread that made it gets ``source="identity_provider"``
and its round trips; the others get the same token with ``source="cache"``
and no round trips of their own.

The token itself is in ``access_token`` and nowhere else: ``repr``, ``str``,
the HTML card and :meth:`as_dict` show a redacted form. The binding
certificate's private key stays private to the lab (``call_resource`` and
FIC leg 2 need it for the TLS handshake); it is never displayed or exported.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field, replace
from typing import Any

from .. import _html
from ..errors import ConfigurationError
from ..redact import redact_token

IDENTITY_PROVIDER = "identity_provider"
CACHE = "cache"


@dataclass(frozen=True, repr=False, eq=False)
class TokenResult:
    """An access token and the evidence of how it was obtained."""

    access_token: str
    token_type: str
    expires_on: _dt.datetime
    source: str = IDENTITY_PROVIDER
    binding_certificate: Any = None        # public-only lab Certificate
    round_trips: tuple = ()
    elapsed_ms: float = 0.0
    resource: str | None = None
    scope: str | None = None
    identity: str | None = None                       # "SAMI", "UAMI (client_id)", "app <client id>"
    client_id: str | None = None
    tenant_id: str | None = None
    flow: str = "vanilla"                             # vanilla | fic_leg1 | fic_leg2
    refresh_on: _dt.datetime | None = None
    region: str | None = None                         # regional endpoint used (None: global)
    region_source: str | None = None                  # explicit | MSAL_FORCE_REGION | REGION_NAME | IMDS | global
    notes: tuple = ()                                 # visible notes: a region fall-back, a Bearer fall-back
    cloud: Any = field(default=None, compare=False)          # the Cloud it came from
    _credential: Any = field(default=None, compare=False)   # binding cert WITH key

    # -- facts --------------------------------------------------------------------------------
    @property
    def is_pop(self) -> bool:
        return self.token_type.lower() == "mtls_pop"

    @property
    def expires_in(self) -> float:
        """Seconds left (negative when expired)."""
        return (self.expires_on - _dt.datetime.now(_dt.timezone.utc)).total_seconds()

    @property
    def authorization_header(self) -> str:
        """``mtls_pop <token>`` for a bound token, ``Bearer <token>`` otherwise."""
        return f"{'mtls_pop' if self.is_pop else 'Bearer'} {self.access_token}"

    def binding_certificate_info(self) -> dict | None:
        """msal PR #938's shape: ``{"x5c": [...], "thumbprint_sha256": x5t#S256}``; None for Bearer."""
        if self.binding_certificate is None:
            return None
        return self.binding_certificate.binding_certificate()

    def require_binding(self):
        """The binding certificate, or a clear error when the token is not PoP."""
        if self.binding_certificate is None:
            raise ConfigurationError(
                "This result has no binding certificate: the token is a Bearer token.",
                cause="PoP was not requested (use_pop=False), or the flow produced an unbound token.",
                fix="Call acquire_token(resource, use_pop=True) (or exchange with use_pop=True).",
                code="pop_not_requested")
        return self.binding_certificate

    @property
    def round_trip_count(self) -> int:
        return len(self.round_trips)

    def cached_copy(self, elapsed_ms: float) -> "TokenResult":
        """The same token as served from the cache: no round trips of its own."""
        return replace(self, source=CACHE, round_trips=(), elapsed_ms=elapsed_ms)

    # -- display (never the token) -------------------------------------------------------------
    def as_dict(self) -> dict:
        """A JSON-friendly, redacted summary."""
        cert = self.binding_certificate
        return {
            "access_token": redact_token(self.access_token),
            "token_type": self.token_type,
            "source": self.source,
            "flow": self.flow,
            "identity": self.identity,
            "resource": self.resource,
            "expires_on": self.expires_on.isoformat(),
            "binding_certificate": None if cert is None else {"subject": cert.subject,
                                                              "thumbprint_sha256": cert.x5t_s256},
            "round_trips": len(self.round_trips),
            "elapsed_ms": round(self.elapsed_ms, 3),
            "region": self.region or "global",
            "region_source": self.region_source,
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        cert = f" bound_to={self.binding_certificate.x5t_s256}" if self.binding_certificate else ""
        return (f"<TokenResult {self.token_type} {self.flow} source={self.source} "
                f"token={redact_token(self.access_token)}{cert} round_trips={len(self.round_trips)} "
                f"elapsed_ms={self.elapsed_ms:.1f}>")

    __str__ = __repr__

    def _repr_html_(self) -> str:
        """A card in the words the guide uses (x5t#S256, not as_dict's msal field names)."""
        cert = self.binding_certificate
        left = self.expires_in
        pairs = [("Token type", _html.badge(self.token_type, "ok" if self.is_pop else "warn")),
                 ("Source", _html.esc(self.source.replace("_", " ")
                                      + f" ({len(self.round_trips)} request{'s' if len(self.round_trips) != 1 else ''})")),
                 ("Identity", _html.esc(self.identity or "")), ("Flow", _html.esc(self.flow)),
                 ("Resource (aud)", _html.esc(self.resource or ""))]
        if cert is not None:
            pairs += [("Binding certificate", _html.esc(cert.subject)),
                      ("Its x5t#S256", _html.mono(cert.x5t_s256, "mtlspop-cert-x5t"))]
        else:
            pairs.append(("Binding certificate", _html.esc("none: a Bearer token is bound to nothing")))
        pairs += [("Token", _html.mono(redact_token(self.access_token))),
                  ("Expires", _html.esc(f"{self.expires_on.astimezone():%H:%M:%S %Z} "
                                        f"({'expired' if left <= 0 else f'in {left / 60:.0f} min' if left >= 120 else f'in {left:.0f} s'})")),
                  ("Took", _html.esc(f"{self.elapsed_ms:.1f} ms"))]
        title = f"TokenResult: {self.token_type}" + (", bound to a certificate" if cert is not None else "")
        return _html.card(title, _html.rows(pairs), tone="ok" if self.is_pop else "warn",
                          css_class="mtlspop-token-result")


MAX_LIFETIME_S = 366 * 24 * 3600.0


def lifetime_seconds(expires_in) -> float | None:
    """``expires_in`` as seconds (it may be a string, as IMDS and Entra send it); None when it is
    not a finite number between 0 and a year."""
    if isinstance(expires_in, bool):
        return None
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if 0 <= seconds <= MAX_LIFETIME_S else None


LONG_LIVED_S = 7200


def refresh_on_from(payload: dict, now: float | None = None) -> _dt.datetime | None:
    """When to refresh a token early: the answer's ``refresh_in`` (Entra sends it on long-lived
    tokens), else half the lifetime of a token living 2 hours or more (MSAL's rule), else None."""
    refresh_in = lifetime_seconds(payload.get("refresh_in"))
    if refresh_in is not None:
        return expiry_from(refresh_in, now)
    lifetime = lifetime_seconds(payload.get("expires_in"))
    if lifetime is not None and lifetime >= LONG_LIVED_S:
        return expiry_from(lifetime / 2, now)
    return None


def expiry_from(expires_in, now: float | None = None) -> _dt.datetime:
    """An aware UTC datetime from ``expires_in`` (an hour when it is missing or unusable)."""
    seconds = lifetime_seconds(expires_in)
    return _dt.datetime.fromtimestamp((now or time.time()) + (3600.0 if seconds is None else seconds),
                                      _dt.timezone.utc)
