"""Claims as the embedded authority's token service issues them, for tests that mint their own tokens."""

from __future__ import annotations

from mtlspop_lab.authority.token_claims import app_token_claims


def access_token_claims_for(authority, audience, *, object_id, client_id, lifetime_s, cnf_x5t_s256=None):
    """The claims the authority's token service would issue for ``audience`` (its token version)."""
    resource = authority.directory.find_resource(audience)
    return app_token_claims(version=resource.token_version if resource is not None else 2,
                            domain=authority.domain, issuer_v2=authority.issuer, tenant_id=authority.tenant_id,
                            audience=resource.audience if resource is not None else audience,
                            object_id=object_id, client_id=client_id, lifetime_s=lifetime_s,
                            cnf_x5t_s256=cnf_x5t_s256)
