"""The lab beside other software: a real oidc-provider (Node.js) as a second RFC 8705 server.

- :mod:`.oidc_provider` - :class:`OidcProvider`, launched from the node project shipped
  in ``oidc_provider_server/`` (its ``node_modules`` are installed at run time).
"""
