"""Tenants: the directories one authority serves, found by id, name or issuer.

Entra ID is one token service for many tenants: the tenant is the first path
segment (``/{tenant}/oauth2/v2.0/token``), each tenant has its own issuer
(``https://login.../{tid}/v2.0``) and its own apps, and an app of tenant A is
unknown in tenant B (AADSTS700016). The home tenant also holds the lab VM and
its managed identities; other tenants hold apps (the identity in tenant A,
resource in tenant B set-up that federated credentials exist for).
"""

from __future__ import annotations

import re
import threading
import uuid
from typing import Callable

from ..certs import Certificate
from ..cloud import UNTENANTED
from ..errors import ConfigurationError
from .directory import Directory

HOME_TENANT_NAME = "lab"
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


class Tenants:
    """The authority's tenants. ``login_url()`` is the login host's base URL (issuers derive from it)."""

    def __init__(self, login_url: Callable[[], str], *, user_assigned_count: int = 3,
                 on_certificate: Callable[[Certificate], None] | None = None):
        self._login_url = login_url
        self._on_certificate = on_certificate
        self._lock = threading.Lock()
        self._by_id: dict[str, Directory] = {}
        self._by_name: dict[str, Directory] = {}
        self.home = self._create(HOME_TENANT_NAME, with_vm=True, user_assigned_count=user_assigned_count)

    def issuer(self, tenant_id: str) -> str:
        """The v2.0 issuer of a tenant: ``https://login.<domain>:<port>/{tid}/v2.0``."""
        return f"{self._login_url()}/{tenant_id}/v2.0"

    def _create(self, name: str, *, with_vm: bool, user_assigned_count: int = 0) -> Directory:
        tenant_id = str(uuid.uuid4())
        directory = Directory(tenant_id, self.issuer(tenant_id), name=name, with_vm=with_vm,
                              user_assigned_count=user_assigned_count, on_certificate=self._on_certificate,
                              issuer_of=self._issuer_of, home=getattr(self, "home", None))
        with self._lock:
            self._by_id[tenant_id] = directory
            self._by_name[name] = directory
        return directory

    def add(self, name: str) -> Directory:
        """A new, empty tenant (apps only) with its own tenant id and issuer."""
        clean = name.strip().lower() if isinstance(name, str) else ""
        if not _NAME_RE.fullmatch(clean) or clean in UNTENANTED:
            raise ConfigurationError(f"{str(name)[:40]!r} cannot name a tenant.",
                                     cause="A tenant name is 1-40 lower-case letters, digits or dashes, starting "
                                           "with a letter, and not common, organizations or consumers.",
                                     fix='add_tenant("fabrikam")', code="invalid_tenant")
        with self._lock:
            taken = clean in self._by_name
        if taken:
            raise ConfigurationError(f"The authority already has a tenant named {clean!r}.",
                                     fix="Pick another name, or use authority.tenant(name) to get it.",
                                     code="tenant_exists")
        return self._create(clean, with_vm=False)

    def find(self, id_or_name: str) -> Directory | None:
        """By tenant id (any case) or tenant name; None when unknown."""
        if not isinstance(id_or_name, str):
            return None
        key = id_or_name.strip().lower()
        with self._lock:
            return self._by_id.get(key) or self._by_name.get(key)

    def get(self, id_or_name: str) -> Directory:
        found = self.find(id_or_name)
        if found is None:
            raise ConfigurationError(f"No tenant {str(id_or_name)[:60]!r} in this authority.",
                                     cause=f"Its tenants are: {', '.join(d.name for d in self.all())}.",
                                     fix="Use a tenant id or name from authority.tenants, or add_tenant(name).",
                                     code="tenant_not_found")
        return found

    def by_issuer(self, issuer) -> Directory | None:
        """The tenant whose tokens carry ``iss`` = ``issuer``."""
        if not isinstance(issuer, str):
            return None
        for directory in self.all():
            if directory.issuer == issuer:
                return directory
        return None

    def by_sts_issuer(self, issuer, domain: str) -> Directory | None:
        """The tenant whose v1.0 tokens carry ``iss`` = ``issuer`` (``https://sts.<domain>/{tid}/``)."""
        prefix = f"https://sts.{domain}/"
        if not isinstance(issuer, str) or not issuer.startswith(prefix) or not issuer.endswith("/"):
            return None
        return self.find(issuer[len(prefix):-1])

    def _issuer_of(self, tenant_id: str) -> str | None:
        found = self.find(tenant_id)
        return found.issuer if found is not None else None

    def all(self) -> list[Directory]:
        with self._lock:
            return list(self._by_id.values())
