"""The lab's host names, resolved to 127.0.0.1 in this process while an authority is open.

The authority serves Entra-shaped names (``login.mtlspop.localhost``,
``mtlsauth.mtlspop.localhost``, ``westus3.mtlsauth.mtlspop.localhost``,
``api.mtlspop.localhost``) so that clients written for Entra (MSAL's
``login.`` -> ``mtlsauth.`` rule, certificate name checks) run against it
unchanged. The names sit under ``.localhost``, a name reserved for loopback
(RFC 6761 section 6.3): never a real domain, and curl resolves it to
127.0.0.1 by itself.

How the names resolve in Python: while at least one authority is open,
``socket.getaddrinfo`` is wrapped. The wrapper answers exactly the names an
open authority registered, as if they were ``127.0.0.1``, and hands every
other name to the original function untouched. Everything that resolves
through ``socket.getaddrinfo`` sees the names: ``socket.create_connection``,
``http.client``, urllib3 and requests (and so msal), plain ``ssl`` sockets,
and asyncio (``loop.getaddrinfo`` calls ``socket.getaddrinfo`` in a thread).
``socket.gethostbyname`` and ``gethostbyname_ex`` are wrapped the same way.
Clients with their own DNS (aiodns, uvloop's resolver, other processes) do
not see them: give those ``curl --connect-to``/``--resolve`` or an
``/etc/hosts`` line (``mtlspop-lab serve`` prints both).

The HTTPS default port: Entra serves every host on 443, and msal builds
some URLs from a host name alone (its ESTS-R regional authority,
``https://{region}.{instance}/{tenant}``, drops the authority's port). An
authority registers its names with its TLS port (``https_port=``), and the
hook answers ``(name, 443)`` with that port, so such a URL reaches the
authority as ``https://name/...`` reaches Entra. Every other port is left as
asked. With several authorities open, 443 goes to the one that registered
the name last.

Registrations are counted per name; closing the last authority that
registered a name forgets it, and when no name is left the original
functions are put back. If another library wrapped ``getaddrinfo`` after us,
ours stays below it as a pass-through instead of pulling it out.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from typing import Callable

LAB_DOMAIN = "mtlspop.localhost"
LOOPBACK = "127.0.0.1"

_lock = threading.Lock()
_names: Counter = Counter()
_https: dict[str, list[tuple[object, Callable[[], int]]]] = {}    # name -> (owner, its TLS port), latest last
HTTPS_DEFAULT_PORTS = (443, "443", "https")
_original = {"getaddrinfo": socket.getaddrinfo, "gethostbyname": socket.gethostbyname,
             "gethostbyname_ex": socket.gethostbyname_ex}


def _normal(host) -> str | None:
    if isinstance(host, (bytes, bytearray)):
        try:
            host = bytes(host).decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(host, str):
        return None
    return host.rstrip(".").lower()


def is_lab_name(host) -> bool:
    """True when ``host`` is a name an open authority serves (what the hook answers)."""
    name = _normal(host)
    return name is not None and _names.get(name, 0) > 0


def https_port(host) -> int | None:
    """The TLS port that ``(host, 443)`` reaches (the latest owner's), or None if the name has none."""
    owners = _https.get(_normal(host) or "")
    port = owners[-1][1]() if owners else 0
    return port or None


def _getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - socket's signature
    if is_lab_name(host):
        if port in HTTPS_DEFAULT_PORTS:
            port = https_port(host) or port
        host = LOOPBACK
    return _original["getaddrinfo"](host, port, family, type, proto, flags)


def _gethostbyname(host):
    return LOOPBACK if is_lab_name(host) else _original["gethostbyname"](host)


def _gethostbyname_ex(host):
    if is_lab_name(host):
        return (_normal(host), [], [LOOPBACK])
    return _original["gethostbyname_ex"](host)


_HOOKS = {"getaddrinfo": _getaddrinfo, "gethostbyname": _gethostbyname, "gethostbyname_ex": _gethostbyname_ex}


def register(names, *, https_port: Callable[[], int] | None = None, owner: object = None) -> tuple[str, ...]:
    """Resolve ``names`` to 127.0.0.1 in this process until :func:`unregister` (counted).

    ``https_port``: where ``(name, 443)`` connects while ``owner`` holds the name (see the module notes).
    """
    clean = tuple(n for n in (_normal(x) for x in names) if n)
    with _lock:
        _names.update(clean)
        if https_port is not None:
            for name in clean:
                _https.setdefault(name, []).append((owner, https_port))
        for attr, hook in _HOOKS.items():
            if getattr(socket, attr) is _original[attr]:
                setattr(socket, attr, hook)
    return clean


def unregister(names, *, owner: object = None) -> None:
    """Forget one registration of each name (and ``owner``'s port for it); with no name left,
    restore ``socket``'s functions."""
    with _lock:
        for name in names:
            owners = _https.get(name, [])
            mine = [entry for entry in owners if entry[0] is owner]
            if mine:
                owners.remove(mine[-1])
            if not owners:
                _https.pop(name, None)
            if _names.get(name, 0) > 1:
                _names[name] -= 1
            else:
                _names.pop(name, None)
        if not _names:
            for attr, hook in _HOOKS.items():
                if getattr(socket, attr) is hook:
                    setattr(socket, attr, _original[attr])


def registered() -> list[str]:
    """The names the hook answers now (sorted)."""
    with _lock:
        return sorted(_names)


def hook_installed() -> bool:
    return socket.getaddrinfo is _getaddrinfo
