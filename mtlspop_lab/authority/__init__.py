"""The embedded local authority: Entra-like token service, IMDS and a protected API on loopback.

``from mtlspop_lab.authority import LocalAuthority``; see :mod:`.local`.
"""

from .directory import App, Directory, FederatedCredential, ManagedIdentityRecord, Resource
from .local import LocalAuthority
from .trace import TraceEntry

__all__ = ["LocalAuthority", "Directory", "App", "ManagedIdentityRecord", "FederatedCredential",
           "Resource", "TraceEntry"]
