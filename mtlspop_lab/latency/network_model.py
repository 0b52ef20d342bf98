"""The network model behind "regional is faster": stated round-trip times per host, with sources.

On loopback every host is about 0.1 ms away, so regional and global endpoints
cost the same; a difference only appears because the lab *injects* a delay
per round trip on the server side. Those delays are a model of a network,
not a measurement of one, and every chart and table that shows them says
"model" (the scenario's delay label starts with ``model <name>:`` and its
label ends with ``(model)``).

The default model, :data:`AZURE_SAME_REGION`, is a client VM in the region
whose regional token host it uses. Its numbers and where they come from:

=============  =====  ========================================================
host           RTT    source
=============  =====  ========================================================
regional mTLS  2 ms   same region: Azure documents a round trip of less than
                      2 ms between the availability zones of a region
                      (learn.microsoft.com, "What are availability zones?")
global mTLS    20 ms  assumption: the global host answers from a datacenter
                      in another region of the same geography; Azure's
                      "network round-trip latency statistics" page
                      (learn.microsoft.com/azure/networking/azure-network-latency)
                      publishes measured values per region pair: read yours
login          20 ms  the global login host (Bearer, discovery): as global mTLS
imds           1 ms   on the host itself (link-local 169.254.169.254); no
                      network hop beyond the VM's host
resource       2 ms   assumption: the protected API runs in the same region
=============  =====  ========================================================

These are the assumptions of a model, chosen to make the protocol's
round-trip count visible; on a real VM run the same scenarios against live
endpoints with no injected delay (``delay_ms=0``) and read the real numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ..errors import ConfigurationError

ROLES = ("regional", "mtls", "login", "imds", "resource")       # listener groups of the authority


@dataclass(frozen=True)
class NetworkModel:
    """Round-trip times per host role (ms) and where each number comes from."""

    name: str
    rtt_ms: Mapping[str, float]
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        unknown = set(self.rtt_ms) - set(ROLES)
        if unknown or any(float(v) < 0 for v in self.rtt_ms.values()):
            raise ConfigurationError(f"Network model {self.name!r} has unknown hosts or negative times.",
                                     cause=f"Hosts are {', '.join(ROLES)}; times are ms >= 0.",
                                     fix='NetworkModel("mine", {"regional": 2, "mtls": 20}).')
        object.__setattr__(self, "rtt_ms", MappingProxyType({k: float(v) for k, v in self.rtt_ms.items()}))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    @classmethod
    def custom(cls, regional_ms: float, global_ms: float) -> "NetworkModel":
        """A model of the caller's own two numbers (regional and global mTLS host)."""
        return cls("custom", {"regional": regional_ms, "mtls": global_ms},
                   {"regional": "given by the caller", "mtls": "given by the caller"})

    def listener_delays(self) -> tuple[tuple[str, float], ...]:
        """What the scenario injects: ``(("regional", 2.0), ("mtls", 20.0), ...)``."""
        return tuple((role, self.rtt_ms[role]) for role in ROLES if role in self.rtt_ms)

    def rows(self) -> list[dict]:
        """One row per host: host, RTT, source (a table a notebook can show)."""
        return [{"host": role, "model_rtt_ms": self.rtt_ms[role], "source": self.sources.get(role, "")}
                for role in ROLES if role in self.rtt_ms]

    def describe(self) -> str:
        parts = ", ".join(f"{role} {ms:g} ms" for role, ms in self.listener_delays())
        return f"network model {self.name!r} (round-trip times, not measurements): {parts}"

    def __str__(self) -> str:
        return self.describe()


AZURE_SAME_REGION = NetworkModel(
    "azure-same-region",
    {"regional": 2.0, "mtls": 20.0, "login": 20.0, "imds": 1.0, "resource": 2.0},
    {"regional": "same region: < 2 ms between availability zones (Azure docs, 'What are availability zones?')",
     "mtls": "assumption: global host served from another region of the same geography; see Azure's "
             "'network round-trip latency statistics' for your region pair",
     "login": "assumption: as the global mTLS host",
     "imds": "on the host (link-local 169.254.169.254)",
     "resource": "assumption: the API runs in the same region"},
)
