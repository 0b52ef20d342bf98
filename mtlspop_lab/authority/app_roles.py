"""App roles: the permissions an app-only token carries in ``roles``.

In Entra an API (a resource application) declares app roles (``Data.Read``),
and an admin assigns them to client principals: apps, managed identities,
and therefore federated principals too (a federated credential signs in *as*
its app, so the leg-2 app's assignments are what the final token carries).
The token service puts the assigned role values in the token's ``roles``
claim at issue time; the API decides per operation which role it requires.

Two consequences learners meet, both reproduced here:

* an assignment reaches only tokens issued after it: a token acquired before
  the grant (and served from a cache) still lacks the role, and the API
  answers 403 until a new token is acquired;
* assignments take a while to propagate (the guide: "wait up to 5 minutes";
  Microsoft's docs say changes may take time to show in tokens). The lab's
  ``propagation_delay_s`` knob makes a new assignment effective that many
  seconds after it is made (0 by default, a few seconds in notebooks).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass

from ..errors import ConfigurationError

_VALUE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,119}$")


@dataclass(frozen=True)
class AppRole:
    """A role an API declares (``value`` is what appears in ``roles``)."""

    resource: str
    value: str
    id: str
    allowed_member_types: tuple = ("Application",)


@dataclass(frozen=True)
class AppRoleAssignment:
    """``principal_id`` (object id) holds ``role`` on ``resource`` from ``effective_at`` (epoch seconds)."""

    principal_id: str
    principal_name: str
    resource: str
    role: str
    created_at: float
    effective_at: float

    @property
    def effective(self) -> bool:
        return time.time() >= self.effective_at


class AppRoles:
    """One tenant's app roles and assignments. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._roles: dict[str, dict[str, AppRole]] = {}
        self._assignments: list[AppRoleAssignment] = []
        self._delay_s = 0.0

    # -- the propagation knob -------------------------------------------------------------
    @property
    def propagation_delay_s(self) -> float:
        return self._delay_s

    @propagation_delay_s.setter
    def propagation_delay_s(self, seconds: float) -> None:
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 600:
            raise ConfigurationError(f"Propagation delay {seconds!r} s is out of range.",
                                     cause="The lab stands seconds in for Entra's minutes: 0 to 600 s.",
                                     fix="set_permission_propagation_delay(5)")
        self._delay_s = float(seconds)

    # -- roles -------------------------------------------------------------------------------
    def add(self, resource: str, value: str) -> AppRole:
        if not isinstance(value, str) or not _VALUE_RE.match(value):
            raise ConfigurationError(f"{str(value)[:60]!r} cannot be an app role value.",
                                     cause="A role value is 1-120 characters without spaces, e.g. Data.Read.",
                                     fix='add_app_role(resource, "Data.Read")', code="invalid_app_role")
        with self._lock:
            declared = self._roles.setdefault(resource, {})
            role = declared.get(value)
            if role is None:
                role = declared[value] = AppRole(resource, value, str(uuid.uuid4()))
            return role

    def roles_of(self, resource: str) -> list[AppRole]:
        with self._lock:
            return list(self._roles.get(resource, {}).values())

    # -- assignments ------------------------------------------------------------------------
    def assign(self, principal_id: str, principal_name: str, resource: str, value: str) -> AppRoleAssignment:
        with self._lock:
            declared = self._roles.get(resource, {})
            if value not in declared:
                known = ", ".join(declared) or "none"
                raise ConfigurationError(f"The API {resource} declares no app role {value!r}.",
                                         cause=f"Its app roles: {known}.",
                                         fix=f'directory.add_app_role("{resource}", "{value}") first.',
                                         code="app_role_not_found")
            now = time.time()
            existing = next((a for a in self._assignments if a.principal_id == principal_id
                             and a.resource == resource and a.role == value), None)
            if existing is not None:
                return existing
            assignment = AppRoleAssignment(principal_id, principal_name, resource, value, now, now + self._delay_s)
            self._assignments.append(assignment)
            return assignment

    def revoke(self, principal_id: str, resource: str, value: str) -> bool:
        """Remove an assignment (tokens already issued keep their roles until they expire)."""
        with self._lock:
            before = len(self._assignments)
            self._assignments = [a for a in self._assignments if not (
                a.principal_id == principal_id and a.resource == resource and a.role == value)]
            return len(self._assignments) != before

    def assignments(self, principal_id: str | None = None) -> list[AppRoleAssignment]:
        with self._lock:
            return [a for a in self._assignments if principal_id is None or a.principal_id == principal_id]

    def roles_for(self, principal_id: str, resource: str, now: float | None = None) -> list[str]:
        """The role values a token issued now for ``principal_id`` and ``resource`` carries."""
        moment = time.time() if now is None else now
        with self._lock:
            return sorted({a.role for a in self._assignments if a.principal_id == principal_id
                           and a.resource == resource and a.effective_at <= moment})
