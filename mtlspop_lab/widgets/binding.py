"""BindingPanel: is this token bound to that certificate, and what happens to a stolen token?

A thin view over :func:`mtlspop_lab.inspector.check_binding` (the verdict card)
and :func:`mtlspop_lab.flows.call_resource` (the protected API, which checks
the TLS client certificate against the token's ``cnf.x5t#S256``).

"Replay as an attacker" presents a certificate of the attacker's own (trusted
at the TLS layer, so the refusal comes from the binding check, not from the
handshake): a PoP token is refused, a Bearer token is accepted.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from .. import _html, flows
from ..certs import Certificate
from ..errors import ConfigurationError, ResourceAccessError
from ..inspector import check_binding, decode_token, inspect_token
from ..inspector.view import token_card
from ..redact import redact_token
from ._base import Panel, labelled
from .flow import DEFAULT_RESOURCE, check_open

FROM_FLOW, FRESH, PASTED = "flow", "fresh", "pasted"
BINDING, OTHER = "binding", "other"


class BindingPanel(Panel):
    """Check a token against a certificate; call the API with it; replay it as an attacker."""

    title = "Binding and replay"
    intro = ("A bound token is only accepted with its certificate. Check the binding, call the API, "
             "then replay the token as an attacker with another certificate.")

    def __init__(self, authority, flow_panel=None, *, resource: str = DEFAULT_RESOURCE):
        self.authority = authority
        self.flow_panel = flow_panel
        self.resource = resource
        sources = ([("Last token of the FlowPanel", FROM_FLOW)] if flow_panel is not None else []) + [
            ("A fresh PoP token", FRESH), ("A pasted token", PASTED)]
        self.source = widgets.ToggleButtons(options=sources, value=sources[0][1],
                                            style={"button_width": "200px"})
        self.pasted = widgets.Textarea(placeholder="Paste an access token (header.payload.signature)",
                                       layout=widgets.Layout(width="100%", height="60px", display="none"))
        self.certificate = widgets.ToggleButtons(
            options=[("Its binding certificate", BINDING), ("Another certificate", OTHER)], value=BINDING,
            style={"button_width": "200px"})
        self.check_button = widgets.Button(description="Check binding", button_style="primary", icon="search")
        self.call_button = widgets.Button(description="Call the API", icon="cloud")
        self.replay_button = widgets.Button(description="Replay as an attacker", button_style="danger",
                                            icon="user-secret")
        self.token_line = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.verdict_box = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.call_box = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.verdict: Any = None
        self.view: Any = None
        self.response: Any = None
        self.call_error: ResourceAccessError | None = None
        self._fresh = None
        self._attacker: Certificate | None = None
        self._app = None
        super().__init__([labelled("Token", self.source), self.pasted,
                          labelled("Certificate", self.certificate),
                          widgets.HBox([self.check_button, self.call_button, self.replay_button],
                                       layout=widgets.Layout(flex_flow="row wrap"))],
                         [self.token_line, self.verdict_box, self.call_box])
        self.source.observe(self._on_source, names="value")
        self.check_button.on_click(lambda _b: self._show(self.check, "verdict_box"))
        self.call_button.on_click(lambda _b: self._show(lambda: self.call(self.certificate.value), "call_box"))
        self.replay_button.on_click(lambda _b: self._show(lambda: self.call(OTHER, replay=True), "call_box"))

    # -- the token and the certificates ----------------------------------------------------------
    def _on_source(self, _change=None) -> None:
        self.pasted.layout.display = "" if self.source.value == PASTED else "none"

    @property
    def attacker_certificate(self) -> Certificate:
        """The attacker's own certificate (with key), trusted at the TLS layer only."""
        if self._attacker is None:
            self._attacker = Certificate.create_self_signed("CN=attacker,O=Not the token owner")
            self.authority.trust_client_certificate(self._attacker)
        return self._attacker

    def token(self):
        """The token under study: a TokenResult, or a string for a pasted token."""
        check_open(self.authority)
        if self.source.value == FROM_FLOW:
            if self.flow_panel.result is None:
                raise ConfigurationError("The FlowPanel has no token yet.",
                                         cause="Nothing was acquired there, or its tokens were forgotten.",
                                         fix="Press Run in the FlowPanel first, or pick 'A fresh PoP token'.",
                                         code="no_token")
            return self.flow_panel.result
        if self.source.value == FRESH:
            if self._fresh is None:
                if self._app is None:
                    self._app = self.authority.directory.register_app("lab-bindingpanel-app")
                self._fresh = flows.MtlsPopTokenAcquirer.for_confidential_client(
                    self._app.client_id, self._app.tenant_id, self._app.certificate, cloud=self.authority.cloud)
            return self._fresh.acquire_token(self.resource, use_pop=True)
        text = self.pasted.value.strip()
        if not text:
            raise ConfigurationError("No token was pasted.", cause="The box above is empty.",
                                     fix="Paste an access token (header.payload.signature) in the box, then retry.",
                                     code="no_token")
        return text

    def _known_binding_certificate(self):
        for candidate in (getattr(self.flow_panel, "result", None), getattr(self._fresh, "certificate", None)):
            cert = getattr(candidate, "binding_certificate", candidate)
            if cert is not None:
                return cert
        return None

    # -- actions ------------------------------------------------------------------------------------
    def check(self) -> str:
        """The verdict for the chosen token and certificate (also kept in ``.verdict`` and ``.view``).

        One card says what the token is first: certificate-bound (then whether ``cnf`` names this
        certificate), Bearer (nothing to bind) or unsigned (proves nothing); the claims follow.
        """
        token = self.token()
        text = token if isinstance(token, str) else token.access_token
        if self.certificate.value == OTHER:
            cert = self.attacker_certificate
        elif isinstance(token, str):
            cert = self._known_binding_certificate()
        else:
            cert = token.binding_certificate
        self.view = inspect_token(text, certificate=cert, authority=self.authority)
        self.verdict = check_binding(text, cert) if cert is not None else None
        kind = {"certificate_bound": "certificate-bound (has cnf.x5t#S256)", "bearer": "Bearer (no cnf claim)",
                "unsigned": "unsigned (alg none or no signature)"}[self.view.kind]
        self.token_line.value = _html.rows([("Token", _html.mono(redact_token(text))), ("Kind", _html.esc(kind)),
                                            ("Audience", _html.esc(self.view.decoded.audience))])
        role = "the attacker's certificate" if self.certificate.value == OTHER else "its binding certificate"
        return binding_card(self.view, certificate_role=role)

    def call(self, which: str, *, replay: bool = False) -> str:
        """Call the protected API with the token over mTLS with the chosen certificate."""
        token = self.token()
        if isinstance(token, str):
            raise ConfigurationError("A pasted token cannot be sent: the lab does not hold its certificate's key.",
                                     cause="mTLS needs the private key of the certificate the token is bound to.",
                                     fix="Use 'Last token of the FlowPanel' or 'A fresh PoP token' to call the API.",
                                     code="no_private_key")
        certificate = self.attacker_certificate if which == OTHER else None
        self.response, self.call_error = None, None
        try:
            self.response = flows.call_resource(self.authority.resource_url, token, certificate=certificate)
        except ResourceAccessError as refused:
            self.call_error = refused
        return call_card(token, self.response, self.call_error,
                         attacker=self.attacker_certificate if which == OTHER else None, replay=replay)

    def clear(self) -> None:
        """Forget what the previous action showed: one verdict per action."""
        self.token_line.value = self.verdict_box.value = self.call_box.value = ""
        self.status.value = ""
        self.verdict = self.view = self.response = self.call_error = None

    def _show(self, action, target: str) -> None:
        self.clear()
        html = self.run(action, busy="Working…")
        if html is not None:
            getattr(self, target).value = html


def binding_card(view, *, certificate_role: str = "the certificate") -> str:
    """The BindingPanel's verdict: what the token is, then cnf beside the certificate, then every claim."""
    if view.kind == "certificate_bound" and view.verdict is not None:
        verdict = view.verdict
        title = verdict.summary
        tone = "ok" if verdict.bound else "bad"
        pairs = [("Token cnf.x5t#S256", _html.mono(verdict.actual, "mtlspop-cnf-x5t")),
                 (f"x5t#S256 of {certificate_role}", _html.mono(verdict.expected, "mtlspop-cert-x5t")),
                 ("Verdict", _html.badge("equal: bound", "ok") if verdict.bound
                  else _html.badge("different: not bound", "bad")),
                 ("Why", _html.esc(verdict.reason))]
        if not verdict.bound and verdict.fix:
            pairs.append(("What to do", _html.esc(verdict.fix)))
    elif view.kind == "certificate_bound":
        title, tone = "Certificate-bound token; no certificate to compare with", "info"
        pairs = [("Token cnf.x5t#S256", _html.mono(view.decoded.x5t_s256, "mtlspop-cnf-x5t")),
                 ("What to do", _html.esc("Run the FlowPanel (its binding certificate is then known), or pick "
                                          "'Another certificate' to compare with the attacker's."))]
    elif view.kind == "bearer":
        title, tone = "Bearer token: nothing to bind", "warn"
        pairs = [("Why", _html.esc("It has no cnf claim, so no certificate or key is tied to it: any "
                                   "holder can use it. There is nothing to check against a certificate.")),
                 ("To get a bound token", _html.esc("Ask for token_type=mtls_pop over mTLS (FlowPanel: "
                                                    "Token type 'mTLS PoP')."))]
    else:
        title, tone = "Unsigned token (alg: none): it proves nothing", "bad"
        pairs = [("Why", _html.esc("Its header says alg 'none' or its signature is empty: anyone can write "
                                   "such a token with any claims. A resource must refuse it, bound or not."))]
    pairs.append(("Signature", _html.esc(view.signature_detail)))
    body = _html.rows(pairs) + "".join(
        f"<div class='mtlspop-warning mtlspop-{code}' style='margin-top:4px'>⚠ {_html.esc(text)}</div>"
        for code, text in view.warnings)
    body += ("<details style='margin-top:6px'><summary>Every claim of the token (claims inspector)</summary>"
             + token_card(view) + "</details>")
    return _html.card(title, body, tone=tone, css_class=f"mtlspop-verdict mtlspop-kind-{view.kind}")


def call_card(token, response, error, *, attacker=None, replay: bool = False) -> str:
    """What the API answered; for a replay, the attacker's thumbprint beside the token's cnf."""
    stolen = replay or attacker is not None
    who = "the attacker's certificate" if attacker is not None else (
        "its binding certificate" if token.is_pop else "a certificate of the app (a Bearer token needs none)")
    scheme = "mtls_pop" if token.is_pop else "Bearer"
    pairs = [("Sent", _html.esc(f"Authorization: {scheme} {redact_token(token.access_token)} over TLS with {who}"))]
    cnf = decode_token(token.access_token).x5t_s256
    pairs.append(("Token cnf.x5t#S256", _html.mono(cnf, "mtlspop-cnf-x5t") if cnf
                  else _html.esc("none (a Bearer token: bound to nothing)")))
    if attacker is not None:
        pairs.append(("Attacker's certificate x5t#S256", _html.mono(attacker.x5t_s256, "mtlspop-attacker-x5t")
                      + " " + (_html.badge("≠ cnf", "ok") if cnf else _html.badge("nothing to compare", "bad"))))
    if response is not None:
        body = response.json()
        pairs += [("Answer", _html.badge(f"accepted (HTTP {response.status_code})", "bad" if stolen else "ok")),
                  ("Scheme", _html.esc(body.get("scheme"))), ("Audience", _html.esc(body.get("aud")))]
        if stolen:
            title = ("Replay ACCEPTED: a Bearer token works for whoever holds it" if not token.is_pop
                     else "Replay ACCEPTED: the API did not enforce the binding")
            return _html.card(title, _html.rows(pairs), tone="bad", css_class="mtlspop-call mtlspop-replay")
        return _html.card("The API accepted the token", _html.rows(pairs), tone="ok", css_class="mtlspop-call")
    pairs += [("Answer", _html.badge(f"refused (HTTP {error.status})", "bad")),
              ("Reason", _html.esc(error.message)), ("What it means", _html.esc(error.cause))]
    if stolen:
        return _html.card("Replay refused: a stolen PoP token is useless without its private key",
                          _html.rows(pairs), tone="ok", css_class="mtlspop-call mtlspop-replay")
    pairs.append(("What to do", _html.esc(error.fix)))
    return _html.card("The API refused the token", _html.rows(pairs), tone="bad", css_class="mtlspop-call")
