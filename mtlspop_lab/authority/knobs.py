"""The authority's knobs: what a real service does not let you turn, and the lab does.

A delay per round trip, faults on demand, an IMDS that is v1-only or absent, a
token lifetime, IMDS's attestation policy, app roles the protected API requires
and how long a role assignment takes to reach new tokens. :class:`Knobs` is a
mixin of :class:`~mtlspop_lab.authority.local.LocalAuthority`, kept apart so the
authority's module holds its wiring and this one what a notebook turns; every
knob change is all or nothing (bad input is a ``ConfigurationError`` that
changes nothing), and :meth:`Knobs.reset_knobs` puts the defaults back.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigurationError
from .attestation import POLICIES as ATTESTATION_POLICIES
from .faults import Fault, check_listener_selector, listener_matches
from .server import Listener

IMDS_MODES = ("v2", "v1_only", "absent")


class Knobs:
    """Knob methods of the LocalAuthority (which provides the listeners, ports, services and lock)."""

    # provided by LocalAuthority.__init__
    _listeners: dict[str, Listener]
    _ports: dict[str, Any]
    _faults: Any
    _lock: Any
    _closed: bool
    _imds_mode: str
    _lifetime: int | None
    _default_lifetime: int | None
    attestation: Any
    directory: Any
    resource_api: Any

    @staticmethod
    def _check_lifetime(seconds) -> int:
        if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 1 or seconds > 86400 * 2:
            raise ConfigurationError(f"Token lifetime {seconds!r} is out of range.",
                                     cause="Lifetimes are whole seconds between 1 and 172800.",
                                     fix="set_token_lifetime(None) for Entra's lifetimes, or a few seconds to show expiry.")
        return int(seconds)

    # -- knobs -----------------------------------------------------------------------------
    def _selected(self, listener: str) -> list[Listener]:
        check_listener_selector(listener, list(self._listeners))
        return [l for name, l in self._listeners.items() if listener_matches(listener, name)]

    def set_delay(self, ms: float, listener: str = "all", *, handshake: bool = False) -> None:
        """Add ``ms`` of server-side delay to every round trip on ``listener`` (0 removes it).

        The delay is paid once per HTTP exchange. With ``handshake=True`` a new
        TLS connection pays it once more before its first answer, as the
        handshake's round trip would on a real network (TLS 1.3: one round
        trip; the TCP connect's own round trip cannot be delayed server-side).
        """
        if not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0 or ms > 120_000:
            raise ConfigurationError(f"Delay {ms!r} ms is out of range.", fix="Use 0 to 120000 ms, e.g. set_delay(20).")
        for l in self._selected(listener):
            l.delay_ms = float(ms)
            l.handshake_delay_ms = float(ms) if handshake else 0.0

    def delays(self) -> dict:
        """listener name -> injected delay in ms."""
        return {name: l.delay_ms for name, l in self._listeners.items()}

    def inject_fault(self, kind: str, count: int = 1, listener: str = "all", *, status: int = 503,
                     retry_after: float | None = None, delay_ms: float = 3000.0,
                     path_contains: str | None = None) -> None:
        """Make the next ``count`` eligible requests on ``listener`` fail in the way ``kind`` says.

        See :mod:`mtlspop_lab.authority.faults` for the kinds. Discovery and
        JWKS requests are skipped unless ``path_contains`` selects them.
        """
        check_listener_selector(listener, list(self._listeners))
        try:       # all or nothing: a value that is not a number changes nothing and says so
            count, status, delay_ms = int(count), int(status), float(delay_ms)
            if not math.isfinite(delay_ms) or not 0 <= delay_ms <= 120_000:
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise ConfigurationError("inject_fault(): count and status are whole numbers, delay_ms 0 to 120000.",
                                     cause=f"Got count={str(count)[:20]!r}, status={str(status)[:20]!r}, "
                                           f"delay_ms={str(delay_ms)[:20]!r}.",
                                     fix='inject_fault("status", count=2, status=503) or '
                                         'inject_fault("slow", delay_ms=3000).', code="invalid_fault") from None
        self._faults.add(Fault(kind, count, listener, status, retry_after, delay_ms, path_contains))

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def pending_faults(self) -> list:
        return self._faults.pending

    def set_imds_mode(self, mode: str) -> None:
        """``"v2"`` (default), ``"v1_only"`` (v2 endpoints 404), ``"absent"`` (connection refused)."""
        if mode not in IMDS_MODES:
            raise ConfigurationError(f"Unknown IMDS mode {mode!r}.", fix=f"Use one of {', '.join(IMDS_MODES)}.")
        # all or nothing: the mode changes only once the IMDS port is in the state the mode says
        port = self._ports["imds"]
        with self._lock:
            if mode == "absent":
                port.stop()
            elif not self._closed:
                try:
                    port.start()
                except OSError as exc:
                    raise ConfigurationError(
                        f"IMDS cannot listen again on port {port.port}: {exc.strerror or type(exc).__name__}.",
                        cause="While IMDS was absent another program took its port; the mode stays "
                              f"{self._imds_mode!r}.",
                        fix="Free the port and retry, or start a new LocalAuthority.",
                        code="imds_port_taken") from None
            self._imds_mode = mode

    @property
    def imds_mode(self) -> str:
        return self._imds_mode

    def set_token_lifetime(self, seconds: int | None) -> None:
        """Fix every new token's lifetime to ``seconds`` (e.g. a few seconds to show expiry);
        None restores Entra's: a random 60-90 minutes for apps, 24 hours for managed identities."""
        self._lifetime = None if seconds is None else self._check_lifetime(seconds)

    @property
    def token_lifetime_s(self) -> int | None:
        """The fixed lifetime knob, or None for Entra's lifetimes."""
        return self._lifetime

    def set_attestation(self, policy: str) -> None:
        """IMDS's key attestation policy for ``issuecredential``: ``"off"`` (attestation_token
        ignored), ``"optional"`` (the default: verified when sent) or ``"required"`` (a CSR
        without a valid attestation of its key is refused). See :mod:`.attestation`."""
        if policy not in ATTESTATION_POLICIES:
            raise ConfigurationError(f"Unknown attestation policy {policy!r}.",
                                     fix=f"Use one of {', '.join(ATTESTATION_POLICIES)}.")
        self.attestation.set_policy(policy)

    @property
    def attestation_policy(self) -> str:
        return self.attestation.policy

    def reset_knobs(self) -> None:
        """No delay, no faults, IMDS v2, attestation optional, the constructor's token lifetime, no role
        required by the API, no permission propagation delay (the trace, apps and assignments are kept)."""
        self.set_delay(0, "all")
        self.clear_faults()
        self.set_imds_mode("v2")
        self.set_attestation("optional")
        self._lifetime = self._default_lifetime
        self.resource_api.clear_role_requirements()
        self.set_permission_propagation_delay(0)

    # -- permissions -------------------------------------------------------------------------
    def require_app_role(self, role: str, path: str = "/", resource: str | None = None) -> None:
        """Make the protected API answer 403 under ``path`` unless the token's ``roles`` has ``role``
        (only for tokens of ``resource`` when given). Until reset_knobs() or clear_role_requirements()."""
        self.resource_api.require_role(role, path, resource)

    def clear_role_requirements(self) -> None:
        self.resource_api.clear_role_requirements()

    @property
    def role_requirements(self) -> list[tuple[str, str, str | None]]:
        """The API's role rules: (path prefix, role, resource or None), a copy."""
        return list(self.resource_api.role_rules)

    def set_permission_propagation_delay(self, seconds: float) -> None:
        """New app-role assignments reach tokens ``seconds`` after they are made (Entra: minutes)."""
        self.directory.app_roles.propagation_delay_s = seconds

    @property
    def permission_propagation_delay_s(self) -> float:
        return self.directory.app_roles.propagation_delay_s
