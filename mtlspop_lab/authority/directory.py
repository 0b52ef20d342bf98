"""The directory: one tenant, its apps, managed identities, federated credentials and resources.

This is the state Entra ID keeps about a tenant, reduced to what the mTLS PoP
flows read: which certificates an app registered (TLS client auth and
``private_key_jwt``), which identities a VM has (IMDS selectors by client id,
object id or resource id), which federated credentials an app trusts (FIC
leg 2), and which resources accept certificate-bound tokens (AADSTS392196).

Registering a certificate makes it pass the TLS layer of the mTLS listeners
(``on_certificate`` callback), because Python's ``ssl`` cannot accept an
unknown client certificate and answer with an OAuth error afterwards.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Callable

from ..certs import Certificate
from ..cloud import TOKEN_EXCHANGE_AUDIENCE
from ..errors import ConfigurationError
from .app_roles import AppRole, AppRoleAssignment, AppRoles

SUBSCRIPTION_ID = "00000000-1ab0-4000-8000-00000000cafe"
RESOURCE_GROUP = "mtlspop-lab"
VM_NAME = "lab-vm"


@dataclass(frozen=True)
class Resource:
    """A resource application: its URI, whether it accepts certificate-bound tokens, and the token
    version it accepts (Entra issues that version: v1 ``aud`` = the URI, v2 ``aud`` = ``app_id``)."""

    uri: str
    name: str
    accepts_bound_tokens: bool = True
    token_version: int = 1
    app_id: str = ""

    @property
    def audience(self) -> str:
        """What a token for this resource carries as ``aud``."""
        return self.app_id if self.token_version == 2 and self.app_id else self.uri


@dataclass
class App:
    """An app registration: ids and the certificates it may authenticate with.

    ``tenant_id`` is where it is registered (its home). A multi-tenant app
    provisioned into another tenant (:meth:`Directory.provision`) has a record
    there too: the same client id, certificates and federated credentials (they
    live on the registration), its own ``object_id`` (the service principal's),
    and ``provisioned_in`` naming that tenant.
    """

    name: str
    client_id: str
    tenant_id: str
    object_id: str
    certificates: list = field(default_factory=list)      # lab Certificates (the first one WITH key)
    federated_credentials: list = field(default_factory=list)
    multi_tenant: bool = False
    provisioned_in: str | None = None

    @property
    def certificate(self) -> Certificate:
        """The app's first certificate, with its private key when the lab generated it."""
        return self.certificates[0]

    def has_certificate_x5t(self, x5t_s256: str) -> bool:
        return any(c.x5t_s256 == x5t_s256 for c in self.certificates)

    def __repr__(self) -> str:
        return f"<App {self.name} client_id={self.client_id} certificates={len(self.certificates)}>"


@dataclass(frozen=True)
class ManagedIdentityRecord:
    """A managed identity as the directory knows it (the server side of ManagedIdentityId)."""

    name: str
    client_id: str
    object_id: str
    resource_id: str
    kind: str = "user_assigned"      # or "system_assigned"
    tenant_id: str = ""              # the tenant whose directory holds it (the VM's home tenant)

    @property
    def is_system_assigned(self) -> bool:
        return self.kind == "system_assigned"


@dataclass(frozen=True)
class FederatedCredential:
    """A trust on an app: assertions with this (issuer, subject) and audience may sign in as it."""

    name: str
    issuer: str
    subject: str
    audience: str = TOKEN_EXCHANGE_AUDIENCE


# Microsoft's resources accept v1.0 tokens (as in Entra); the lab's own API is a learner-registered
# API and accepts v2.0 (its app id, made per tenant, is the tokens' aud).
DEFAULT_RESOURCES = (
    Resource("https://graph.microsoft.com", "Microsoft Graph"),
    Resource("https://vault.azure.net", "Azure Key Vault"),
    Resource("https://management.azure.com", "Azure Resource Manager"),
    Resource("https://storage.azure.com", "Azure Storage"),
    Resource("api://mtlspop-lab-api", "mtlspop-lab API", token_version=2),
    # v2 issuer (what a federated credential names) with the exchange URI as aud (FIC docs)
    Resource(TOKEN_EXCHANGE_AUDIENCE, "Token exchange (FIC leg 1 audience)", token_version=2),
    Resource("https://legacy.contoso.example", "Legacy API (Bearer only)", accepts_bound_tokens=False),
)
TOKEN_VERSIONS = (1, 2)


class Directory:
    """One tenant's directory. Thread-safe: listeners read it while a notebook changes it.

    The home tenant (``with_vm=True``) also holds the lab VM and its managed
    identities; other tenants (``LocalAuthority.add_tenant``) hold apps only.
    ``issuer_of(tenant_id)`` names the issuer of another tenant of the same
    authority (a federated credential may trust an identity of another tenant);
    ``home`` is the home tenant's directory, where managed identities are found.
    """

    def __init__(self, tenant_id: str, issuer: str, *, name: str = "lab", user_assigned_count: int = 3,
                 with_vm: bool = True, on_certificate: Callable[[Certificate], None] | None = None,
                 issuer_of: Callable[[str], str | None] | None = None, home: "Directory | None" = None):
        self.tenant_id = tenant_id
        self.issuer = issuer
        self.name = name
        self._on_certificate = on_certificate
        self._issuer_of = issuer_of
        self._home = home
        self._lock = threading.RLock()
        self._apps: dict[str, App] = {}
        self._issued: dict[str, str] = {}                 # x5t#S256 of an IMDS v2 cert -> MI client_id
        self.resources = {r.uri: (replace(r, app_id=str(uuid.uuid4()))
                                  if r.token_version == 2 and r.uri != TOKEN_EXCHANGE_AUDIENCE else r)
                          for r in DEFAULT_RESOURCES}
        self.app_roles = AppRoles()
        self.vm_id = str(uuid.uuid4())
        self.vmss_id = None
        vm_res = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}"
                  f"/providers/Microsoft.Compute/virtualMachines/{VM_NAME}")
        self.system_assigned = ManagedIdentityRecord(VM_NAME, str(uuid.uuid4()), str(uuid.uuid4()),
                                                     vm_res, kind="system_assigned",
                                                     tenant_id=tenant_id) if with_vm else None
        self.user_assigned = [
            ManagedIdentityRecord(
                f"lab-uami-{i}", str(uuid.uuid4()), str(uuid.uuid4()),
                f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}"
                f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/lab-uami-{i}", tenant_id=tenant_id)
            for i in range(1, user_assigned_count + 1)] if with_vm else []

    def __repr__(self) -> str:
        return f"<Directory {self.name} tenant_id={self.tenant_id} apps={len(self._apps)}>"

    # -- apps ----------------------------------------------------------------------
    def register_app(self, name: str, certificate: Certificate | None = None, *, multi_tenant: bool = False) -> App:
        """Register an app; with no certificate a self-signed one (with key) is generated.

        ``multi_tenant=True`` ("Accounts in any organizational directory"): it may be provisioned into
        other tenants (:meth:`provision`), the way an identity of this tenant reaches their resources."""
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("An app needs a name.", fix='register_app("contoso-app")')
        if certificate is None:
            certificate = Certificate.create_self_signed(f"CN={name.strip()}")
        elif not isinstance(certificate, Certificate):
            raise ConfigurationError("certificate must be a lab Certificate.",
                                     cause=f"Got {type(certificate).__name__}.",
                                     fix="Use mtlspop_lab.Certificate.create_self_signed() or load_pem().")
        app = App(name.strip(), str(uuid.uuid4()), self.tenant_id, str(uuid.uuid4()), [certificate],
                  multi_tenant=bool(multi_tenant))
        with self._lock:
            self._apps[app.client_id] = app
        self._announce(certificate)
        return app

    def provision(self, app: App) -> App:
        """Provision another tenant's multi-tenant app here (admin consent): a service principal with
        its own object id, so this tenant's token endpoint knows the client id and issues its tokens."""
        if not isinstance(app, App):
            raise ConfigurationError("provision() takes an App registered in another tenant.",
                                     cause=f"Got {type(app).__name__}.")
        if app.tenant_id == self.tenant_id:
            raise ConfigurationError(f"{app.name!r} is registered in this tenant already.",
                                     fix="Provision it into the tenant whose resources it calls.",
                                     code="already_registered_here")
        if not app.multi_tenant:
            raise ConfigurationError(
                f"{app.name!r} is a single-tenant app: it cannot be provisioned into another tenant.",
                cause="Only apps registered for 'Accounts in any organizational directory' get a service "
                      "principal in other tenants.",
                fix="Register it with register_app(name, multi_tenant=True) in its home tenant.",
                code="app_not_multitenant")
        with self._lock:
            existing = self._apps.get(app.client_id)
            if existing is not None:
                return existing
            principal = App(app.name, app.client_id, app.tenant_id, str(uuid.uuid4()), app.certificates,
                            app.federated_credentials, multi_tenant=True, provisioned_in=self.tenant_id)
            self._apps[app.client_id] = principal
        return principal

    def app(self, client_id: str) -> App:
        with self._lock:
            found = self._apps.get(str(client_id))
        if found is None:
            raise ConfigurationError(f"No app with client_id {client_id!r} in this directory.",
                                     fix="Use the client_id of an App returned by register_app().")
        return found

    def find_app(self, client_id: str) -> App | None:
        with self._lock:
            return self._apps.get(client_id)

    @property
    def apps(self) -> list[App]:
        with self._lock:
            return list(self._apps.values())

    def add_certificate(self, app: App, certificate: Certificate) -> None:
        """Register another certificate for ``app`` (a rotation); the old ones stay valid."""
        if not isinstance(certificate, Certificate):
            raise ConfigurationError("certificate must be a lab Certificate.")
        with self._lock:
            target = self._apps.get(app.client_id)
            if target is None:
                raise ConfigurationError(f"App {app.name!r} is not registered in this directory.")
            if certificate not in target.certificates:
                target.certificates.append(certificate)
        self._announce(certificate)

    def _announce(self, certificate: Certificate) -> None:
        if self._on_certificate is not None:
            self._on_certificate(certificate)

    # -- managed identities ------------------------------------------------------------
    @property
    def managed_identities(self) -> list[ManagedIdentityRecord]:
        return [mi for mi in (self.system_assigned, *self.user_assigned) if mi is not None]

    def find_managed_identity(self, kind: str = "system_assigned", value: str | None = None
                              ) -> ManagedIdentityRecord | None:
        """By selector: ``system_assigned`` or ``client_id``/``object_id``/``resource_id`` = value."""
        if kind == "system_assigned":
            return self.system_assigned
        attr = {"client_id": "client_id", "object_id": "object_id", "resource_id": "resource_id"}.get(kind)
        if attr is None or not value:
            return None
        for mi in self.user_assigned:
            mine = getattr(mi, attr)
            if (mine.lower() == value.lower()) if attr == "resource_id" else (mine == value):
                return mi
        return None

    def managed_identity_by_client_id(self, client_id: str) -> ManagedIdentityRecord | None:
        return next((mi for mi in self.managed_identities if mi.client_id == client_id), None)

    def record_issued_certificate(self, x5t_s256: str, client_id: str) -> None:
        """IMDS v2 issued a certificate to this MI: it may authenticate at the mTLS token endpoint."""
        with self._lock:
            self._issued[x5t_s256] = client_id

    def issued_to(self, x5t_s256: str) -> str | None:
        with self._lock:
            return self._issued.get(x5t_s256)

    # -- federated credentials ---------------------------------------------------------
    def add_federated_credential(self, app: App, trusted, *, name: str | None = None,
                                 audience: str = TOKEN_EXCHANGE_AUDIENCE) -> FederatedCredential:
        """Let assertions from ``trusted`` sign in as ``app`` (FIC leg 2).

        ``trusted``: a ManagedIdentityId (``.kind``/``.value``), a ManagedIdentityRecord,
        an App, an ``(issuer, subject)`` pair, or an ``(ExternalIssuer, subject)`` pair.
        Entra matches issuer and audience exactly and the subject case-sensitively. The subject of a token this
        authority issues to an MI or app is its object id.
        """
        issuer, subject = self._resolve_trusted(trusted)
        fic = FederatedCredential(name or f"fic-{len(app.federated_credentials) + 1}", issuer, subject, audience)
        with self._lock:
            target = self._apps.get(app.client_id)
            if target is None:
                raise ConfigurationError(f"App {app.name!r} is not registered in this directory.")
            if target.provisioned_in is not None:
                raise ConfigurationError(
                    f"{app.name!r} is only provisioned in this tenant; its federated credentials live on the "
                    f"app registration in its home tenant {target.tenant_id}.",
                    fix="Add the federated credential through the home tenant's directory.",
                    code="credential_on_registration")
            if fic not in target.federated_credentials:
                target.federated_credentials.append(fic)
        return fic

    def _resolve_trusted(self, trusted) -> tuple[str, str]:
        if isinstance(trusted, tuple) and len(trusted) == 2 and all(isinstance(x, str) for x in trusted):
            return trusted
        if (isinstance(trusted, tuple) and len(trusted) == 2 and isinstance(trusted[1], str)
                and isinstance(getattr(trusted[0], "issuer", None), str)):
            return trusted[0].issuer, trusted[1]          # (an external issuer, its subject)
        if isinstance(trusted, (ManagedIdentityRecord, App)):
            return self._issuer_for(trusted.tenant_id), trusted.object_id
        kind, value = getattr(trusted, "kind", None), getattr(trusted, "value", None)
        if isinstance(kind, str):
            where = self if self.system_assigned is not None or self._home is None else self._home
            mi = where.find_managed_identity(kind, value)
            if mi is None:
                raise ConfigurationError(f"No managed identity matches {kind}={value!r}.",
                                         cause="The directory has one system-assigned and a few user-assigned identities.",
                                         fix="Use an id from authority.directory.user_assigned.")
            return self._issuer_for(mi.tenant_id), mi.object_id
        raise ConfigurationError("trusted must be a ManagedIdentityId, a ManagedIdentityRecord, an App "
                                 "or an (issuer, subject) pair.", cause=f"Got {type(trusted).__name__}.")

    def _issuer_for(self, tenant_id: str) -> str:
        """The issuer of tokens that ``tenant_id`` (this tenant or another of the authority) issues."""
        if not tenant_id or tenant_id == self.tenant_id or self._issuer_of is None:
            return self.issuer
        return self._issuer_of(tenant_id) or self.issuer

    def find_federated_credential(self, app: App, issuer: str, subject: str, audience: str
                                  ) -> FederatedCredential | None:
        with self._lock:
            return next((f for f in app.federated_credentials
                         if f.issuer == issuer and f.subject == subject and f.audience == audience), None)

    # -- resources ---------------------------------------------------------------------
    def add_resource(self, uri: str, name: str | None = None, *, accepts_bound_tokens: bool = True,
                     token_version: int = 2) -> Resource:
        """Register an API. Like an app registration's manifest, it says which token version it
        accepts: 2 (the default for a new registration; its tokens' ``aud`` is its new app id) or 1."""
        if token_version not in TOKEN_VERSIONS:
            raise ConfigurationError(f"token_version {token_version!r} is not 1 or 2.",
                                     cause="Entra issues v1.0 or v2.0 access tokens, as the resource accepts.",
                                     fix="add_resource(uri, token_version=2) (or 1, as Microsoft's own APIs).")
        with self._lock:
            known = self.resources.get(uri.rstrip("/"))
            # registering an API again changes its settings, not its identity: the app id stays
            app_id = (known.app_id if known is not None and known.app_id else str(uuid.uuid4())) \
                if token_version == 2 else ""
            resource = Resource(uri.rstrip("/"), name or uri, accepts_bound_tokens, token_version, app_id)
            self.resources[resource.uri] = resource
        return resource

    def find_resource_by_audience(self, aud: str) -> Resource | None:
        """The resource a token's ``aud`` names (the URI of a v1 resource, the app id of a v2 one)."""
        with self._lock:
            resources = list(self.resources.values())
        return next((r for r in resources if r.audience == aud), None)

    # -- app roles ----------------------------------------------------------------------
    def roles_of(self, object_id: str, resource: Resource) -> list[str]:
        """The app roles an issued token for ``resource`` carries (``roles``), as assigned and propagated."""
        return self.app_roles.roles_for(object_id, resource.uri)

    def find_resource(self, uri: str) -> Resource | None:
        """The resource for a scope or resource string (``/.default`` and a trailing ``/`` ignored)."""
        if not uri:
            return None
        if uri.endswith("/.default"):
            uri = uri[: -len("/.default")]
        uri = uri.rstrip("/")
        with self._lock:
            found = self.resources.get(uri)
            if found is None:   # by URI in any case, or by a v2 API's application id
                found = next((r for r in self.resources.values()
                              if r.uri.lower() == uri.lower() or (r.app_id and r.app_id == uri.lower())), None)
        return found

    # -- app roles (permissions; see app_roles.py) ---------------------------------------------
    def _resource_uri(self, resource) -> str:
        uri = resource.uri if isinstance(resource, Resource) else resource
        found = self.find_resource(uri) if isinstance(uri, str) else None
        if found is None:
            raise ConfigurationError(f"No resource {str(uri)[:100]!r} in tenant {self.tenant_id}.",
                                     fix="Use a resource URI of directory.resources, or add_resource(uri).",
                                     code="resource_not_found")
        return found.uri

    def add_app_role(self, resource, value: str) -> AppRole:
        """Declare app role ``value`` (e.g. ``"Data.Read"``) on the API ``resource`` (URI or Resource)."""
        return self.app_roles.add(self._resource_uri(resource), value)

    def assign_app_role(self, principal, resource, role) -> AppRoleAssignment:
        """Grant ``role`` on ``resource`` to an app, a managed identity (record or ManagedIdentityId),
        or an object id. A federated principal is its app: assign the role to the leg-2 app.
        Effective after the propagation delay, for tokens issued from then on."""
        object_id, name = self._principal(principal)
        value = role.value if isinstance(role, AppRole) else role
        return self.app_roles.assign(object_id, name, self._resource_uri(resource), value)

    def revoke_app_role(self, principal, resource, role) -> bool:
        object_id, _ = self._principal(principal)
        value = role.value if isinstance(role, AppRole) else role
        return self.app_roles.revoke(object_id, self._resource_uri(resource), value)

    def _principal(self, principal) -> tuple[str, str]:
        if isinstance(principal, App):
            here = self.find_app(principal.client_id)      # this tenant's record (a service principal's own id)
            if here is not None:
                return here.object_id, here.name
        if isinstance(principal, ManagedIdentityRecord):
            return principal.object_id, principal.name
        kind, value = getattr(principal, "kind", None), getattr(principal, "value", None)
        if isinstance(kind, str):
            mi = self.find_managed_identity(kind, value)
            if mi is not None:
                return mi.object_id, mi.name
        if isinstance(principal, str):
            for app in self.apps:
                if principal in (app.object_id, app.client_id):
                    return app.object_id, app.name
            for mi in self.managed_identities:
                if principal in (mi.object_id, mi.client_id):
                    return mi.object_id, mi.name
        raise ConfigurationError(f"{str(principal)[:80]!r} is not a principal of tenant {self.tenant_id}.",
                                 cause="App roles are assigned to apps and managed identities (a federated "
                                       "credential signs in as its app).",
                                 fix="Pass an App from register_app(), a managed identity, or its object id.",
                                 code="principal_not_found")
