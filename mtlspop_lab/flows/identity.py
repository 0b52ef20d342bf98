"""ManagedIdentityId: which managed identity a flow acts as.

The same four shapes MSAL.NET's ``ManagedIdentityId`` has: system-assigned,
or user-assigned named by client id, ARM resource id or object (principal)
id. All three user-assigned forms name the same identity; IMDS resolves them.

The embedded authority duck-types two attributes, ``kind`` and ``value``, so
this class is the only identity vocabulary the lab needs. Validation happens
here, at construction, so a typo fails with a clear message before any
network call.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from ..errors import ConfigurationError

SYSTEM_ASSIGNED = "system_assigned"
CLIENT_ID = "client_id"
RESOURCE_ID = "resource_id"
OBJECT_ID = "object_id"
KINDS = (SYSTEM_ASSIGNED, CLIENT_ID, RESOURCE_ID, OBJECT_ID)

_ARM_UAMI_RE = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourcegroups/[^/]+/providers/"
    r"Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$", re.IGNORECASE)


def _check_guid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(str(value).strip()))
    except (ValueError, AttributeError, TypeError):
        raise ConfigurationError(
            f"{str(value)[:60]!r} is not a valid {what}.",
            cause=f"A managed identity {what} is a GUID like 6325cd32-9911-41f3-819c-416cdf9104e7.",
            fix=f"Copy the identity's {what} from the portal (Managed Identities > Overview) or "
                "'az identity show'; for the ARM path use user_assigned_resource_id().",
            code="invalid_managed_identity_id") from None


@dataclass(frozen=True)
class ManagedIdentityId:
    """A managed identity selector: ``kind`` in ``KINDS`` and ``value`` (None when system-assigned)."""

    kind: str
    value: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigurationError(f"Unknown managed identity kind {self.kind!r}.",
                                     fix="Use ManagedIdentityId.system_assigned() or one of the "
                                         "user_assigned_*() constructors.")
        if self.kind == SYSTEM_ASSIGNED and self.value is not None:
            raise ConfigurationError("A system-assigned identity takes no id.",
                                     fix="Call ManagedIdentityId.system_assigned() without arguments.")

    @classmethod
    def system_assigned(cls) -> "ManagedIdentityId":
        """The identity of the Azure resource the code runs on (exists only on Azure)."""
        return cls(SYSTEM_ASSIGNED)

    @classmethod
    def user_assigned_client_id(cls, client_id: str) -> "ManagedIdentityId":
        """A user-assigned identity by its client (application) id."""
        return cls(CLIENT_ID, _check_guid(client_id, "client id"))

    @classmethod
    def user_assigned_object_id(cls, object_id: str) -> "ManagedIdentityId":
        """A user-assigned identity by its object (principal) id."""
        return cls(OBJECT_ID, _check_guid(object_id, "object id"))

    @classmethod
    def user_assigned_resource_id(cls, resource_id: str) -> "ManagedIdentityId":
        """A user-assigned identity by its ARM resource id."""
        value = str(resource_id or "").strip()
        if not _ARM_UAMI_RE.match(value):
            raise ConfigurationError(
                f"{value[:80]!r} is not a user-assigned identity resource id.",
                cause="The resource id is the ARM path of the identity.",
                fix="Pass '/subscriptions/<sub guid>/resourcegroups/<group>/providers/"
                    "Microsoft.ManagedIdentity/userAssignedIdentities/<name>' "
                    "('az identity show --query id').",
                code="invalid_managed_identity_id")
        return cls(RESOURCE_ID, value)

    @classmethod
    def from_record(cls, record, kind: str = CLIENT_ID) -> "ManagedIdentityId":
        """From anything with ``client_id``/``object_id``/``resource_id`` (a directory record)."""
        if kind == SYSTEM_ASSIGNED:
            return cls.system_assigned()
        builder = {CLIENT_ID: cls.user_assigned_client_id, OBJECT_ID: cls.user_assigned_object_id,
                   RESOURCE_ID: cls.user_assigned_resource_id}[kind]
        return builder(getattr(record, kind))

    @property
    def is_system_assigned(self) -> bool:
        return self.kind == SYSTEM_ASSIGNED

    def imds_v1_params(self) -> dict:
        """Selector query parameters of IMDS v1 (``msi_res_id`` for a resource id)."""
        name = {CLIENT_ID: "client_id", OBJECT_ID: "object_id", RESOURCE_ID: "msi_res_id"}.get(self.kind)
        return {name: self.value} if name else {}

    def imds_v2_params(self) -> dict:
        """Selector query parameters of IMDS v2 (``mi_res_id`` for a resource id)."""
        name = {CLIENT_ID: "client_id", OBJECT_ID: "object_id", RESOURCE_ID: "mi_res_id"}.get(self.kind)
        return {name: self.value} if name else {}

    def to_msal(self):
        """The equivalent msal ``SystemAssignedManagedIdentity`` / ``UserAssignedManagedIdentity``."""
        import msal
        if self.is_system_assigned:
            return msal.SystemAssignedManagedIdentity()
        return msal.UserAssignedManagedIdentity(**{self.kind: self.value})

    def describe(self) -> str:
        """Short label for tables: ``SAMI`` or ``UAMI (client_id)``."""
        return "SAMI" if self.is_system_assigned else f"UAMI ({self.kind})"

    def __str__(self) -> str:
        return "system-assigned" if self.is_system_assigned else f"user-assigned {self.kind}={self.value}"
