"""The lab beside other people's code.

- :mod:`.oidc_provider` - :class:`OidcProvider`, a real oidc-provider (Node.js) as a second RFC 8705
  server, launched from the node project shipped in ``oidc_provider_server/`` (its ``node_modules``
  are installed at run time).
- ``azure_*`` - adapters of the lab's mTLS PoP acquirers to the Azure SDK for Python (``azure-core``
  pipelines; ``azure-identity`` works against the authority unchanged). They need the optional extra
  ``mtlspop-lab[azure]``; nothing here is imported by ``import mtlspop_lab``, and importing an adapter
  without the extra raises :class:`~mtlspop_lab.errors.ExtraNotInstalledError`.
"""
