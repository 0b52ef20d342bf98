"""Interop: the lab next to other people's code.

``azure_*`` modules adapt the lab's mTLS PoP acquirers to the Azure SDK for
Python (``azure-core`` pipelines; ``azure-identity`` works against the
authority unchanged). They need the optional extra ``mtlspop-lab[azure]``;
nothing here is imported by ``import mtlspop_lab``, and importing an adapter
without the extra raises :class:`~mtlspop_lab.errors.ExtraNotInstalledError`.
"""
