"""Scenarios: which identity, flow, token, cache state, region, delay and concurrency to measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..cloud import GRAPH
from ..errors import ConfigurationError
from .network_model import AZURE_SAME_REGION, NetworkModel
from .schema import FLOWS, IDENTITIES, STATES, TOKENS


# --------------------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class Scenario:
    """One experimental condition. Every field becomes a label column.

    ``delay_ms`` is injected per round trip on every listener of the embedded
    authority; ``listener_delays`` then overrides named listeners, in order
    (e.g. ``(("regional", 5), ("mtls", 20))``). ``handshake_delay``: a new TLS
    connection pays the delay once more, as its handshake round trip would on
    a real network (the authority's ``set_delay(..., handshake=True)``).
    ``name`` defaults to a readable label built from the other fields.
    ``model`` names the :class:`~.network_model.NetworkModel` the delays come
    from (region scenarios): the delay label then starts with ``model <name>:``
    and the label ends with ``(model)``, so no chart or table shows modelled
    numbers without saying so.
    """

    identity: str = "confidential_client"
    flow: str = "vanilla"
    token: str = "pop"
    state: str = "cold"
    region: str | None = None
    delay_ms: float = 0.0
    listener_delays: tuple[tuple[str, float], ...] = ()
    handshake_delay: bool = False
    concurrency: int = 1
    resource: str = GRAPH
    name: str | None = None
    model: str | None = None

    def __post_init__(self):
        for value, allowed, what in ((self.identity, IDENTITIES, "identity"), (self.flow, FLOWS, "flow"),
                                     (self.token, TOKENS, "token"), (self.state, STATES, "state")):
            if value not in allowed:
                raise ConfigurationError(f"Unknown {what} {value!r} in a bench scenario.",
                                         fix=f"Use one of: {', '.join(allowed)}.")
        if int(self.concurrency) < 1:
            raise ConfigurationError(f"concurrency must be >= 1, got {self.concurrency!r}.",
                                     fix="Pass the number of threads acquiring at the same time.")
        if self.state == "cold_mint" and not self.uses_issued_certificate:
            raise ConfigurationError(
                "state='cold_mint' only applies to a managed identity's PoP token.",
                cause="Only IMDS v2 (managed identity, PoP) mints a certificate on the first acquisition; "
                      "a confidential client brings its own and IMDS v1 (Bearer) uses none.",
                fix="Use identity='managed_identity' with token='pop' (or flow='two_leg'), or state='cold'.")
        if self.state == "cold_mint" and int(self.concurrency) != 1:
            raise ConfigurationError(
                "state='cold_mint' runs on one thread only.",
                cause="A process mints its IMDS v2 certificate once; threads racing the first acquisition "
                      "wait for that one mint and then share it.",
                fix="Use concurrency=1 for cold_mint, or state='cold' to measure threads.")
        if self.identity == "managed_identity" and self.region is not None:
            raise ConfigurationError(
                "A managed identity does not choose its region.",
                cause="IMDS v2 answers with the mTLS endpoint to use (mtls_authentication_endpoint).",
                fix="Use region=None for managed identity scenarios, or a confidential client.")
        if float(self.delay_ms) < 0 or any(float(ms) < 0 for _, ms in self.listener_delays):
            raise ConfigurationError("An injected delay cannot be negative.", fix="Pass 0 or more ms.")
        object.__setattr__(self, "listener_delays",
                           tuple((str(k), float(v)) for k, v in self.listener_delays))

    @property
    def uses_issued_certificate(self) -> bool:
        """True when the scenario's token needs the process-wide IMDS v2 certificate."""
        return self.identity == "managed_identity" and (self.token == "pop" or self.flow == "two_leg")

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        parts = [self.state.replace("_", " "), self.flow.replace("_", "-"),
                 "PoP" if self.token == "pop" else "Bearer",
                 "app" if self.identity == "confidential_client" else "MI"]
        if self.region:
            parts.append(self.region)
        elif self.listener_delays:
            parts.append("global")
        if self.concurrency > 1:
            parts.append(f"x{self.concurrency}")
        if self.model:
            parts.append("(model)")
        return " ".join(parts)

    @property
    def delay_label(self) -> str:
        """``"20 ms"``, or ``"5 ms regional, 20 ms mtls"`` when listeners differ."""
        text = [f"{_fmt_ms(ms)} {listener}" for listener, ms in self.listener_delays]
        if self.delay_ms or not text:
            text.insert(0, f"{_fmt_ms(self.delay_ms)}" + (" elsewhere" if text else ""))
        prefix = f"model {self.model}: " if self.model else ""
        return prefix + ", ".join(text) + (" (+1 per new TLS connection)" if self.handshake_delay else "")

    def delay_for(self, listener: str) -> float:
        """The delay the authority injects on ``listener`` ("mtls:westus3", "login", ...)."""
        delay = float(self.delay_ms)
        for name, ms in self.listener_delays:
            if name == "all" or name == listener or (name == "regional" and listener.startswith("mtls:")):
                delay = ms
        return delay

    def token_listener(self) -> str:
        """The listener that serves this scenario's token request (for ``delay_ms``)."""
        if self.region:
            return f"mtls:{self.region}"
        if self.token == "bearer" and self.flow == "vanilla" and self.identity == "confidential_client":
            return "login"
        return "mtls"


def _fmt_ms(ms: float) -> str:
    return f"{ms:g} ms"


def standard_scenarios(delay_ms: float = 20.0) -> list[Scenario]:
    """The six core comparisons (confidential client unless said): cold vanilla PoP,
    cold two-leg PoP, warm-connection vanilla PoP, cache-hit vanilla PoP, cold
    vanilla Bearer, and cold vanilla PoP for a managed identity (its IMDS v2
    certificate reused over a new TLS connection; the mint is
    :func:`managed_identity_scenarios`' ``cold_mint``)."""
    return [
        Scenario(flow="vanilla", state="cold", delay_ms=delay_ms),
        Scenario(flow="two_leg", state="cold", delay_ms=delay_ms),
        Scenario(flow="vanilla", state="warm_connection", delay_ms=delay_ms),
        Scenario(flow="vanilla", state="cache_hit", delay_ms=delay_ms),
        Scenario(flow="vanilla", token="bearer", state="cold", delay_ms=delay_ms),
        Scenario(identity="managed_identity", flow="vanilla", state="cold", delay_ms=delay_ms),
    ]


def region_scenarios(regional_ms: float | None = None, global_ms: float | None = None,
                     region: str = "westus3", state: str = "cold",
                     model: NetworkModel | None = None) -> list[Scenario]:
    """Regional vs global mTLS endpoint under a stated network model.

    The default model is :data:`~.network_model.AZURE_SAME_REGION` (round-trip
    times per host, each with its source). ``regional_ms`` and ``global_ms``
    make a ``custom`` model of those two numbers instead. Either way both
    scenarios run with the same delays, and their labels say "model".
    """
    if model is None:
        if (regional_ms is None) != (global_ms is None):
            raise ConfigurationError("Give both regional_ms and global_ms, or neither (the default model).",
                                     fix="region_scenarios(5, 20) or region_scenarios().")
        model = AZURE_SAME_REGION if regional_ms is None else NetworkModel.custom(regional_ms, global_ms)
    delays = model.listener_delays()
    return [Scenario(state=state, region=region, listener_delays=delays, model=model.name),
            Scenario(state=state, region=None, listener_delays=delays, model=model.name)]


def acquirer_scenarios(delay_ms: float = 20.0) -> list[Scenario]:
    """Acquirer reused for every call vs re-created for every call (the guide's advice)."""
    return [Scenario(state="reused", delay_ms=delay_ms), Scenario(state="cold", delay_ms=delay_ms)]


def managed_identity_scenarios(delay_ms: float = 20.0) -> list[Scenario]:
    """A managed identity's PoP token: the process's first acquisition (certificate minted),
    a cold one (certificate reused, new TLS connection) and one over a warm connection."""
    return [Scenario(identity="managed_identity", state=state, delay_ms=delay_ms)
            for state in ("cold_mint", "cold", "warm_connection")]


def parallel_scenarios(delay_ms: float = 20.0, threads: Sequence[int] = (1, 2, 4, 8, 16),
                       state: str = "cold") -> list[Scenario]:
    """The same acquisition run by 1..16 threads at once (speed-up curve)."""
    return [Scenario(state=state, delay_ms=delay_ms, concurrency=int(k)) for k in threads]


