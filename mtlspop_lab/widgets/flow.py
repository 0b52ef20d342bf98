"""FlowPanel: pick an identity and a flow, press Run, see the token and the round trips.

A thin view over :class:`~mtlspop_lab.flows.MtlsPopTokenAcquirer` (vanilla)
and :class:`~mtlspop_lab.flows.FicLeg1Acquirer` +
:class:`~mtlspop_lab.flows.FicLeg2Exchanger` (two-leg), against a
:class:`~mtlspop_lab.authority.LocalAuthority`. Acquirers are kept per
identity, as the guide advises ("create once, reuse"), so pressing Run twice
shows a cache hit; "Forget tokens" starts over with new acquirers.

For the two-leg flow the panel registers the federated credential that leg 2
needs (the leg-2 app trusts the leg-1 identity) and says so on the card.
"""

from __future__ import annotations

import ipywidgets as widgets

from .. import _html, flows
from ..cloud import GRAPH
from ..errors import ConfigurationError
from ..inspector import decode_token
from ..redact import redact_token
from ..transport.exchanges import capture
from ..transport.sequence import SequenceDiagram
from ..workshop.cast import RESOURCE_TENANT, external_leg1
from ._base import Panel, labelled
from .requests import RequestInspector

VANILLA, FIC = "vanilla", "fic"
POP, BEARER = "mtls_pop", "Bearer"
DEFAULT_RESOURCE = GRAPH
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"


def identity_options(authority) -> list[tuple[str, str]]:
    """(label, key) for every identity the panel offers; keys are stable strings."""
    uami = authority.directory.user_assigned[0]
    return [
        ("System-assigned managed identity (SAMI)", "sami"),
        (f"User-assigned MI by client id ({uami.name})", "uami_client_id"),
        (f"User-assigned MI by resource id ({uami.name})", "uami_resource_id"),
        (f"User-assigned MI by object id ({uami.name})", "uami_object_id"),
        ("Confidential client (app + certificate)", "confidential_client"),
        ("Kubernetes service account (external issuer; FIC leg 1 only)", "ext_kubernetes"),
        ("GitHub Actions workflow (external issuer; FIC leg 1 only)", "ext_github_actions"),
    ]


def external_kind(key: str) -> str | None:
    """``kubernetes``/``github_actions`` for an external-issuer identity key, else None."""
    return key[len("ext_"):] if key.startswith("ext_") else None


def managed_identity_for(authority, key: str) -> flows.ManagedIdentityId | None:
    """The ManagedIdentityId behind an identity key; None for the confidential client."""
    uami = authority.directory.user_assigned[0]
    return {
        "sami": lambda: flows.ManagedIdentityId.system_assigned(),
        "uami_client_id": lambda: flows.ManagedIdentityId.user_assigned_client_id(uami.client_id),
        "uami_resource_id": lambda: flows.ManagedIdentityId.user_assigned_resource_id(uami.resource_id),
        "uami_object_id": lambda: flows.ManagedIdentityId.user_assigned_object_id(uami.object_id),
        "confidential_client": lambda: None,
    }.get(key, lambda: None)()


def check_open(authority) -> None:
    """A readable error instead of a connection refused when the notebook closed the authority."""
    if getattr(authority, "closed", False):
        raise ConfigurationError(
            "The local authority this panel uses is closed.",
            cause="Something called authority.close() (or a `with` block ended) after the panel was made.",
            fix="Run the cell that creates the authority (the notebook's first code cell), then the "
                "panel's cell again: the new panel uses the new authority.",
            code="authority_closed")


def result_card(result, *, assertion=None, note: str = "") -> str:
    """The result card: token type, source, identity, binding certificate and cnf, expiry."""

    cnf = decode_token(result.access_token).x5t_s256
    cert = result.binding_certificate
    bound = bool(cert is not None and cnf is not None and cnf == cert.x5t_s256)
    if result.is_pop:
        title = ("mtls_pop token, bound to its certificate" if bound
                 else "mtls_pop token, but cnf does not match the certificate")
        tone = "ok" if bound else "bad"
    else:
        title, tone = "Bearer token: bound to no certificate", "warn"
    left = result.expires_in
    expires = f"{result.expires_on:%H:%M:%S} UTC ({_duration(left)})"
    trips = list(result.round_trips) + (list(assertion.round_trips) if assertion is not None else [])
    requests = len(trips)
    counted = _request_kinds(trips)
    if result.source != "cache":
        source = f"identity provider ({counted})"
    elif requests:
        source = f"cache for leg 2; leg 1 sent {counted}"
    else:
        source = "cache (no request sent)"
    identity = result.identity or ""
    if assertion is not None:
        identity = f"leg 2: {identity}; leg 1: {assertion.identity or ''}"
    pairs = [
        ("Token type", _html.badge(result.token_type, "ok" if result.is_pop else "warn")),
        ("Source", _html.badge(source, "info")),
        ("Identity", _html.esc(identity)),
        ("Flow", _html.esc({"vanilla": "vanilla (no token exchange: the identity's own token)",
                            "fic_leg2": "FIC two-leg (leg 2 result)"}.get(result.flow, result.flow))),
        ("Resource (aud)", _html.esc(result.resource or "")),
    ]
    if cert is not None:
        pairs.append(("Certificate", _html.esc(cert.subject) + _subject_note(cert.subject)))
        pairs.append(("Certificate x5t#S256", _mono(cert.x5t_s256, "mtlspop-cert-x5t")))
    else:
        pairs.append(("Certificate", _html.esc("none: a Bearer token works for whoever holds it")))
    pairs.append(("Token cnf.x5t#S256", _mono(cnf, "mtlspop-cnf-x5t") if cnf else _html.esc("none (no cnf claim)")))
    if cert is not None:
        pairs.append(("Binding", _html.badge("bound: cnf = certificate", "ok") if bound
                      else _html.badge("not bound", "bad")))
    pairs += [("Token", _html.mono(redact_token(result.access_token))),
              ("Expires", _html.esc(expires)),
              ("Took", _html.esc(f"{result.elapsed_ms:.1f} ms"))]
    if assertion is not None:
        pairs.insert(4, ("Leg 1 assertion", _html.esc(
            f"{assertion.token_type} for {EXCHANGE_AUDIENCE}, "
            f"from the {'cache' if assertion.source == 'cache' else 'identity provider'}, "
            f"bound to {assertion.binding_certificate.x5t_s256[:12]}…" if assertion.binding_certificate
            else f"{assertion.token_type} for {EXCHANGE_AUDIENCE}")))
    body = _html.rows(pairs)
    if note:
        body += f"<div style='margin-top:4px;opacity:.85'>{_html.esc(note)}</div>"
    return _html.card(title, body, tone=tone, css_class="mtlspop-result-card")


def _request_kinds(trips) -> str:
    """'3 requests: 2 to IMDS, 1 to the token service' - so 'vanilla' never looks like one request."""
    if not trips:
        return "no request"
    imds = sum(1 for t in trips if t.kind in ("getplatformmetadata", "issuecredential", "imds_token",
                                              "imds_instance"))
    discovery = sum(1 for t in trips if t.kind == "discovery")
    token = sum(1 for t in trips if t.kind == "token")
    parts = [f"{n} {what}" for n, what in ((imds, "to IMDS"), (discovery, "OIDC discovery"),
                                            (token, "to the token service")) if n]
    return f"{len(trips)} request{'s' if len(trips) != 1 else ''}: " + ", ".join(parts)


def _subject_note(subject: str) -> str:
    """IMDS v2 names a managed identity's certificate CN=<client id>, DC=<tenant id>: say so."""
    if "DC=" in subject and "CN=" in subject:
        return (f"<div style='font-size:12px;color:{_html.MUTED}'>Issued by IMDS for this identity: CN is the "
                f"managed identity's client id, DC its tenant id.</div>")
    return ""


def diagram_output(output: widgets.Output, diagram: SequenceDiagram) -> None:
    """Show the diagram in an Output widget: Mermaid where the front end draws it, text elsewhere.

    JupyterLab ranks text/html above text/vnd.mermaid, so the bundle carries the
    Mermaid source and plain text only; the HTML step list sits beside it.
    """
    output.outputs = ({"output_type": "display_data", "metadata": {},
                       "data": {"text/vnd.mermaid": diagram.mermaid(), "text/plain": str(diagram)}},)


def _mono(value: str, css_class: str) -> str:
    return (f"<code class='{css_class}' style='font-family:ui-monospace,Menlo,Consolas,monospace;"
            f"font-size:12px;overflow-wrap:anywhere'>{_html.esc(value)}</code>")


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "expired"
    if seconds < 120:
        return f"in {seconds:.0f} s"
    return f"in {seconds / 60:.0f} min"


class FlowPanel(Panel):
    """Identity x flow x resource x token type -> a token, its card, its round trips."""

    title = "Get a token"
    intro = ("Pick who asks and how, then Run. An mtls_pop token carries cnf.x5t#S256: "
             "the thumbprint of the certificate it is bound to.")

    def __init__(self, authority, *, resource: str = DEFAULT_RESOURCE, identity: str = "sami",
                 flow: str = VANILLA):
        self.authority = authority
        resources = [uri for uri in authority.directory.resources if uri != EXCHANGE_AUDIENCE]
        self.identity = widgets.Dropdown(options=identity_options(authority), value=identity,
                                         layout=widgets.Layout(width="380px"))
        self.flow = widgets.ToggleButtons(options=[("Vanilla", VANILLA), ("FIC two-leg", FIC)], value=flow,
                                          tooltips=["One token request", "Leg 1 assertion, leg 2 exchange"],
                                          style={"button_width": "120px"})
        self.resource = widgets.Dropdown(options=resources, value=resource, layout=widgets.Layout(width="380px"))
        self.token_type = widgets.ToggleButtons(options=[("mTLS PoP", POP), ("Bearer", BEARER)], value=POP,
                                                style={"button_width": "120px"})
        self.tenant = widgets.Dropdown(options=[(f"Home tenant ({authority.directory.name})", "home"),
                                                (f"Tenant B ({RESOURCE_TENANT}): cross-tenant", RESOURCE_TENANT)],
                                       value="home", layout=widgets.Layout(width="380px"))
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play",
                                         tooltip="Acquire the token")
        self.forget_button = widgets.Button(description="Forget tokens", icon="trash",
                                            tooltip="New acquirers: empty caches")
        self.explain = widgets.HTML()
        self.card = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.requests = RequestInspector()
        self.trips = self.requests.html   # the inspector's summary and details (kept name for tests)
        self.exchanges: list = []
        self.diagram = widgets.Output(layout=widgets.Layout(width="100%"))
        self.steps = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.result = None
        self.assertion = None
        self._acquirers: dict = {}
        self._leg2: dict = {}
        self._app = None
        self._leg2_app = None
        self._bridge = None
        self._federated: set = set()
        controls = [labelled("Identity", self.identity), labelled("Flow", self.flow),
                    labelled("Leg 2 tenant", self.tenant),
                    labelled("Resource", self.resource), labelled("Token type", self.token_type),
                    self.explain, widgets.HBox([self.run_button, self.forget_button])]
        super().__init__(controls, [self.card, self.requests, self.diagram, self.steps])
        self.run_button.on_click(self._on_run)
        self.forget_button.on_click(self._on_forget)
        self.flow.observe(self._describe, names="value")
        self.identity.observe(self._describe, names="value")
        self.tenant.observe(self._describe, names="value")
        self._describe()

    # -- what the choice means --------------------------------------------------------------
    def _describe(self, _change=None) -> None:
        if self.flow.value == VANILLA:
            text = "Vanilla: the identity asks the token service once for the resource's token."
        elif external_kind(self.identity.value):
            text = ("FIC two-leg from outside Entra: leg 1 is a token of an issuer the lab serves (unbound); "
                    "leg 2 sends it as jwt-bearer on the login host, so only a Bearer token can come back.")
        else:
            text = ("FIC two-leg: leg 1 (the identity above) gets a PoP assertion for "
                    f"{EXCHANGE_AUDIENCE}; leg 2 (app 'lab-leg2-app', a confidential client) "
                    "exchanges it over mTLS with leg 1's certificate. Token type applies to leg 2.")
        if self.flow.value != VANILLA and self.tenant.value != "home":
            text += (f" Leg 2 goes to tenant {RESOURCE_TENANT}'s token endpoint as a multi-tenant app of the "
                     f"home tenant provisioned there; {RESOURCE_TENANT} issues the final token.")
        self.explain.value = f"<div style='font-size:12px;opacity:.85;line-height:1.4'>{_html.esc(text)}</div>"

    # -- the lab objects behind the choices ---------------------------------------------------
    @property
    def app(self):
        """The confidential client used as an identity (registered on first use)."""
        if self._app is None:
            self._app = self.authority.directory.register_app("lab-flowpanel-app")
        return self._app

    @property
    def leg2_app(self):
        if self._leg2_app is None:
            self._leg2_app = self.authority.directory.register_app("lab-leg2-app")
        return self._leg2_app

    @property
    def bridge(self):
        """The multi-tenant app of the home tenant, provisioned in tenant B (registered on first use)."""
        if self._bridge is None:
            self._bridge = self.authority.directory.register_app("lab-bridge-app", multi_tenant=True)
            tenant = self.authority.tenants.find(RESOURCE_TENANT) or self.authority.add_tenant(RESOURCE_TENANT)
            tenant.provision(self._bridge)
        return self._bridge

    def _leg2_target(self):
        """(app, tenant id) of leg 2 for the chosen tenant."""
        if self.tenant.value == "home":
            return self.leg2_app, self.leg2_app.tenant_id
        return self.bridge, self.authority.tenant(self.tenant.value).tenant_id

    def _acquirer(self, key: str, fic: bool):
        slot = (key, fic, self.tenant.value if external_kind(key) else None)
        if slot not in self._acquirers:
            cloud = self.authority.cloud
            mi = managed_identity_for(self.authority, key)
            if external_kind(key):
                target, _ = self._leg2_target()
                self._acquirers[slot] = external_leg1(self.authority, external_kind(key), target,
                                                      name=f"panel-{external_kind(key).replace('_', '-')}")
                self._federated.add((key, self.tenant.value))
            elif fic:
                self._acquirers[slot] = (flows.FicLeg1Acquirer.for_managed_identity(mi, cloud=cloud) if mi else
                                         flows.FicLeg1Acquirer.for_confidential_client(
                                             self.app.client_id, self.app.tenant_id, self.app.certificate,
                                             cloud=cloud))
            else:
                self._acquirers[slot] = (flows.MtlsPopTokenAcquirer.for_managed_identity(mi, cloud=cloud) if mi else
                                         flows.MtlsPopTokenAcquirer.for_confidential_client(
                                             self.app.client_id, self.app.tenant_id, self.app.certificate,
                                             cloud=cloud))
        return self._acquirers[slot]

    def _exchanger(self):
        app, tenant_id = self._leg2_target()
        if self.tenant.value not in self._leg2:
            self._leg2[self.tenant.value] = flows.FicLeg2Exchanger.create(app.client_id, tenant_id,
                                                                          cloud=self.authority.cloud)
        return self._leg2[self.tenant.value]

    def _trust_leg1(self, key: str) -> str:
        """Register the federated credential leg 2 needs; returns a note when it was added now."""
        if (key, self.tenant.value) in self._federated or external_kind(key):
            return ""
        app, _ = self._leg2_target()
        mi = managed_identity_for(self.authority, key)
        self.authority.directory.add_federated_credential(app, trusted=mi if mi else self.app)
        self._federated.add((key, self.tenant.value))
        return (f"Set up for you: app '{app.name}' now has a federated credential trusting "
                f"{'this managed identity' if mi else 'app lab-flowpanel-app'} (issuer + subject).")

    # -- actions -----------------------------------------------------------------------------
    def acquire(self):
        """What Run does: returns (result, assertion or None, note)."""
        check_open(self.authority)
        key, resource = self.identity.value, self.resource.value
        use_pop = self.token_type.value == POP
        if self.flow.value == VANILLA:
            if external_kind(key):
                raise ConfigurationError("A token of an external issuer is only an assertion for FIC leg 1.",
                                         cause="Entra does not accept it as an access token; a federated "
                                               "credential exchanges it in leg 2.",
                                         fix="Choose 'FIC two-leg' (and Bearer: external tokens are unbound).",
                                         code="external_token_needs_fic")
            return self._acquirer(key, fic=False).acquire_token(resource, use_pop=use_pop), None, ""
        note = self._trust_leg1(key)
        assertion = self._acquirer(key, fic=True).acquire_assertion()
        result = self._exchanger().exchange_assertion_for_access_token(assertion, resource, use_pop=use_pop)
        return result, assertion, note

    def _on_run(self, _button=None) -> None:
        self.card.value = self.steps.value = ""
        self.requests.clear()
        self.diagram.outputs = ()
        self.result = self.assertion = None
        with capture() as exchanges:   # every request, kept even when the acquisition fails
            outcome = self.run(self.acquire, busy="Acquiring a token…")
        self.exchanges = list(exchanges)
        if outcome is None:
            if self.exchanges:   # a refusal: its requests and diagram stay on screen
                self.requests.show(self.exchanges, self.authority.cloud)
                diagram = SequenceDiagram.from_round_trips([e.trip for e in self.exchanges], title="Failed")
                diagram_output(self.diagram, diagram)
            return
        result, self.assertion, note = outcome
        self.result = result
        shown = (self.assertion, result) if self.assertion is not None else (result,)
        self.card.value = result_card(result, assertion=self.assertion, note=note)
        self.requests.show(self.exchanges, self.authority.cloud, cached=result.source == "cache")
        diagram = SequenceDiagram.from_results(*shown)
        diagram_output(self.diagram, diagram)
        self.steps.value = (f"<details><summary>The same exchange as a list</summary>{diagram.html()}</details>")

    def _on_forget(self, _button=None) -> None:
        self.run(self.forget, busy="Closing acquirers…")
        self.show_message("Tokens forgotten", "The next Run starts with new acquirers and empty caches.")

    def forget(self) -> None:
        """Close every acquirer: the next Run pays discovery, TLS handshakes and token requests again."""
        for acquirer in self._acquirers.values():
            acquirer.close()
        self._acquirers.clear()
        for exchanger in self._leg2.values():
            exchanger.close()
        self._leg2.clear()
        flows.forget_issued_certificates()
        self.result = self.assertion = None
        self.card.value = self.steps.value = ""
        self.requests.clear()
        self.exchanges = []
        self.diagram.outputs = ()

    def close(self) -> None:
        self.forget()
        super().close()
