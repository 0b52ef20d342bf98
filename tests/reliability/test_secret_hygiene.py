"""Secret hygiene: no complete token and no private key in anything the lab shows, logs or raises.

Three sweeps:

1. The whole flow matrix (every identity, vanilla and FIC, Bearer and PoP, the
   protected API, the demo, the FlowPanel) plus a set of provoked errors, with
   the root, ``msal`` and ``urllib3`` loggers at DEBUG. Everything a learner can
   see is collected: log records (with tracebacks), the authority's trace and
   trace frame (text, HTML, JSON), round trips, reprs and HTML of every public
   object, exception messages, ``as_dict``, formatted tracebacks and the chained
   exceptions behind them. All of it is scanned with
   :func:`~mtlspop_lab.redact.contains_secret` and for the raw token strings (and
   their signatures) the test holds.
2. The obvious ways to print a result: ``str``, ``repr``, f-strings, ``format``,
   ``%``, ``print``, ``pprint``, pandas frames (``to_string``, ``_repr_html_``),
   ``json.dumps(default=str)``, logging of the object.
3. Every notebook, executed (nbclient, temporary copies) with DEBUG logging to a
   file: outputs and the log file are scanned.

Explicit reveal paths, by design (see SECURITY.md): ``result.access_token``,
``vars(result)`` / ``result.__dict__`` (the attribute storage itself),
``DecodedToken.token(reveal=True)``. Pickling a TokenResult or a Certificate
is refused, so neither a token nor a private key reaches a pickle file.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickle
import pprint
import shutil
import traceback
from pathlib import Path

import pandas as pd
import pytest

from mtlspop_lab.certs import Certificate
from mtlspop_lab.errors import LabError
from mtlspop_lab.flows import FicLeg2Exchanger, MtlsPopTokenAcquirer, RetryPolicy, call_resource
from mtlspop_lab.inspector import check_binding, decode_token, explain_claims
from mtlspop_lab.redact import contains_secret

from reliability_support import GRAPH, VAULT, World

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LOGGERS = ("", "msal", "urllib3", "mtlspop_lab", "requests")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record):
        self.lines.append(self.format(record))


@contextlib.contextmanager
def debug_logs():
    """Every logger the lab, msal and urllib3 use, at DEBUG, into a list."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield handler.lines
    finally:
        logging.getLogger().removeHandler(handler)
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class Scan:
    """Texts from every surface, and the secrets none of them may hold."""

    def __init__(self):
        self.texts: list[tuple[str, str]] = []
        self.tokens: set[str] = set()

    def secret(self, result) -> None:
        if getattr(result, "access_token", None):
            self.tokens.add(result.access_token)

    def add(self, where: str, *texts) -> None:
        for text in texts:
            self.texts.append((where, text if isinstance(text, str) else str(text)))

    def show(self, where: str, obj) -> None:
        """Every display form of an object."""
        self.add(where, str(obj), repr(obj), f"{obj}", format(obj, ""))
        for method in ("_repr_html_", "to_text", "as_dict"):
            if hasattr(obj, method):
                self.add(f"{where}.{method}", getattr(obj, method)())

    def error(self, where: str, error: BaseException) -> None:
        self.show(where, error)
        self.add(f"{where}.traceback", "".join(traceback.format_exception(error)))
        chained, seen = error, set()
        while chained is not None and id(chained) not in seen:       # what a crash reporter would walk
            seen.add(id(chained))
            self.add(f"{where}.chain", repr(chained), str(chained), repr(getattr(chained, "args", "")))
            chained = chained.__cause__ or chained.__context__

    def assert_clean(self) -> None:
        assert self.tokens, "the sweep collected no token to look for"
        signatures = {t.rsplit(".", 1)[1] for t in self.tokens if t.count(".") == 2 and len(t.rsplit(".", 1)[1]) > 20}
        leaks = []
        for where, text in self.texts:
            if contains_secret(text) or any(t in text for t in self.tokens) or any(s in text for s in signatures):
                leaks.append((where, text[:300]))
        assert leaks == [], f"{len(leaks)} leaks, first: {leaks[:3]}"


def _provoke(scan: Scan, name: str, call) -> None:
    try:
        call()
    except LabError as error:
        scan.error(name, error)
        return
    raise AssertionError(f"{name}: expected a LabError")


@pytest.fixture(scope="module")
def sweep(lab, world):
    """Run the matrix, provoke the errors, collect everything; shared by the tests below."""
    scan = Scan()
    retry = RetryPolicy.fast(2)
    results = []
    with debug_logs() as lines:
        # the flow matrix, every identity, Bearer and PoP, and the API
        for flow in World.FLOWS:
            client = world.client(flow, retry=retry)
            for resource in (GRAPH, VAULT, GRAPH):               # the third is a cache hit
                result = client.acquire(resource)
                results.append(result)
                scan.secret(result)
                if getattr(client, "assertion", None) is not None:
                    scan.secret(client.assertion)
                    results.append(client.assertion)
                scan.show(f"{flow} result", result)
                scan.add(f"{flow} trips", *(str(t) for t in result.round_trips),
                         *(json.dumps(t.as_dict()) for t in result.round_trips))
                response = call_resource(lab.resource_url, result)
                scan.show(f"{flow} resource response", response)
                scan.add(f"{flow} resource body", response.text)
            inner = client._acquirer or client._leg2
            scan.show(f"{flow} client", inner)
            scan.add(f"{flow} client trips", *(str(t) for t in inner.round_trips))
            for transport in getattr(getattr(inner, "_flow", None), "transports", []):
                scan.show(f"{flow} transport", transport)
                scan.add(f"{flow} transport frame", transport.trace_frame().to_string())
            client.close()
        for mi in (world.sami,):                                  # SAMI, both token types
            with MtlsPopTokenAcquirer.for_managed_identity(mi, cloud=lab.cloud, retry=retry) as acquirer:
                for use_pop in (False, True):
                    result = acquirer.acquire_token(GRAPH, use_pop=use_pop)
                    results.append(result)
                    scan.secret(result)
                    scan.show("sami result", result)
        # the inspector on every token
        for result in results:
            decoded = decode_token(result.access_token)
            scan.show("decoded", decoded)
            scan.show("explain", explain_claims(result.access_token).to_string())
            if result.binding_certificate is not None:
                scan.show("verdict", check_binding(result.access_token, result.binding_certificate))
                scan.show("verdict other", check_binding(result.access_token, world.leg2_app.certificate))
        # the demo and the FlowPanel
        from mtlspop_lab.workshop.demo import run_matrix
        scan.add("demo rows", json.dumps(run_matrix(lab)))
        from mtlspop_lab.widgets.flow import FlowPanel, identity_options
        panel = FlowPanel(lab)
        for _label, key in identity_options(lab):
            for flow in ("vanilla", "fic"):
                for token_type in ("mtls_pop", "Bearer"):
                    panel.identity.value, panel.flow.value, panel.token_type.value = key, flow, token_type
                    panel._on_run()
                    if panel.result is not None:
                        scan.secret(panel.result)
                    if panel.assertion is not None:
                        scan.secret(panel.assertion)
                    scan.add(f"panel {key} {flow} {token_type}", panel.card.value, panel.trips.value,
                             panel.steps.value, repr(panel.diagram.outputs))
        lab.set_imds_mode("absent")
        panel.forget()
        panel.identity.value, panel.flow.value = "sami", "vanilla"
        panel._on_run()                                               # an error card
        scan.add("panel error", *(w.value for w in _walk(panel) if isinstance(getattr(w, "value", None), str)))
        lab.set_imds_mode("v2")
        panel.close()

        # provoked errors, each through the public API
        attacker = Certificate.create_self_signed("CN=hygiene-attacker")
        lab.trust_client_certificate(attacker)
        pop = next(r for r in results if r.is_pop and r.flow == "vanilla")
        leg1_result = next(r for r in results if r.flow == "fic_leg1")
        _provoke(scan, "replay other cert", lambda: call_resource(lab.resource_url, pop, certificate=attacker))
        _provoke(scan, "replay Bearer", lambda: call_resource(lab.resource_url, pop, scheme="Bearer"))
        _provoke(scan, "replay assertion", lambda: call_resource(lab.resource_url, leg1_result))
        _provoke(scan, "tampered", lambda: decode_token(pop.access_token[:40] + "!" + pop.access_token[41:]))
        _provoke(scan, "leg2 wrong cert", lambda: FicLeg2Exchanger.create(
            world.leg2_app.client_id, world.leg2_app.tenant_id, cloud=lab.cloud, certificate=attacker,
            retry=retry).exchange_assertion_for_access_token(leg1_result.access_token, GRAPH))
        stranger_app = lab.directory.register_app("hygiene-no-fic")
        _provoke(scan, "leg2 no trust", lambda: FicLeg2Exchanger.create(
            stranger_app.client_id, stranger_app.tenant_id, cloud=lab.cloud,
            retry=retry).exchange_assertion_for_access_token(leg1_result, GRAPH))
        cc = MtlsPopTokenAcquirer.for_confidential_client(world.app.client_id, world.app.tenant_id,
                                                          world.app.certificate, cloud=lab.cloud, retry=retry)
        for kind, extra in (("bearer_downgrade", {}), ("status", {"status": 503}), ("malformed_json", {}),
                            ("reset", {}), ("status", {"status": 429, "retry_after": 0})):
            lab.inject_fault(kind, count=5, listener="mtls", **extra)
            _provoke(scan, f"fault {kind}", lambda: cc.acquire_token("api://mtlspop-lab-api", use_pop=True))
            lab.clear_faults()
        _provoke(scan, "not registered", lambda: MtlsPopTokenAcquirer.for_confidential_client(
            world.app.client_id, world.app.tenant_id, attacker, cloud=lab.cloud,
            retry=retry).acquire_token(GRAPH))
        _provoke(scan, "cert without key", lambda: MtlsPopTokenAcquirer.for_confidential_client(
            world.app.client_id, world.app.tenant_id, world.app.certificate.public_only(), cloud=lab.cloud))
        _provoke(scan, "pfx password", lambda: Certificate.from_pfx(world.app.certificate.to_pfx("pw"), "nope"))
        _provoke(scan, "PEM as token", lambda: decode_token(world.app.certificate.private_key_pem().decode()))
        lab.set_imds_mode("v1_only")
        _provoke(scan, "imds v1", lambda: MtlsPopTokenAcquirer.for_managed_identity(
            world.sami, cloud=lab.cloud, retry=retry).acquire_token(VAULT, use_pop=True))
        lab.set_imds_mode("absent")
        _provoke(scan, "imds absent", lambda: MtlsPopTokenAcquirer.for_managed_identity(
            world.sami, cloud=lab.cloud, retry=retry).acquire_token(VAULT, use_pop=False))
        lab.set_imds_mode("v2")
        cc.close()

        # the latency lab and the executable checklist, on the same authority
        from mtlspop_lab import latency as bench
        measured = bench.run(bench.standard_scenarios(0), iterations=2, authority=lab, progress=False)
        scan.show("bench result", measured)
        for df in (measured.acquisitions, measured.round_trips, measured.summary()):
            scan.add("bench frame", df.to_string(), df.to_csv(), df._repr_html_())
        from mtlspop_lab.workshop.checklist import run_checklist
        report = run_checklist(authority=lab)
        scan.show("checklist", report)
        scan.add("checklist records", json.dumps(report.as_records(), default=str))

        # the authority's own record, in every form
        frame = lab.trace_frame()
        scan.add("trace", *(repr(e) for e in lab.trace))
        scan.add("trace frame", frame.to_string(), frame.to_html(), frame.to_json(date_format="iso"), frame._repr_html_())
        scan.show("authority", lab)
        scan.show("app", world.app)
        scan.show("certificate with key", world.app.certificate)
        for key in ("access_token", "client_assertion"):
            assert frame["request_body"].astype(str).str.contains(key).any() or \
                frame["response_body"].astype(str).str.contains(key).any()
    scan.add("logs", *lines)
    assert any("msal" in line for line in lines) and any("urllib3" in line for line in lines)
    return scan, results


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_the_scan_would_catch_a_leak(sweep):
    scan, results = sweep
    token = results[0].access_token
    for planted in (f"debug: token={token}", f"<td>{token}</td>", token.rsplit(".", 1)[1],
                    results[0]._credential.private_key_pem().decode() if results[0]._credential else token):
        probe = Scan()
        probe.tokens = {token}
        probe.add("planted", planted)
        with pytest.raises(AssertionError):
            probe.assert_clean()


def test_matrix_logs_traces_reprs_and_errors_hold_no_secret(sweep):
    scan, results = sweep
    assert len(scan.tokens) >= 20 and len(scan.texts) > 500
    assert {r.flow for r in results} == {"vanilla", "fic_leg1", "fic_leg2"}
    scan.assert_clean()


def _display_forms(obj) -> dict[str, str]:
    logger = logging.getLogger("mtlspop_lab.hygiene-test")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.info(obj)
        logger.info("%s", obj)
        logger.info("%r", obj)
        logger.info("result: %s", [obj])
        logger.debug({"result": obj})
    finally:
        logger.removeHandler(handler)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        print(obj)
        print([obj], {"r": obj})
    forms = {
        "str": str(obj), "repr": repr(obj), "f-string": f"{obj}", "f-string !r": f"{obj!r}",
        "f-string !s": f"{obj!s}", "format": format(obj), "format spec": "{:}".format(obj),
        "percent": "%s" % (obj,), "percent r": "%r" % (obj,), "print": printed.getvalue(),
        "pprint": pprint.pformat(obj), "pprint in a list": pprint.pformat([obj, {"k": obj}]),
        "json default=str": json.dumps(obj, default=str), "json list": json.dumps([obj], default=str),
        "logging": stream.getvalue(), "html": obj._repr_html_() if hasattr(obj, "_repr_html_") else "",
    }
    if hasattr(obj, "as_dict"):
        forms["as_dict"] = json.dumps(obj.as_dict(), default=str)
    return forms


def test_redaction_cannot_be_defeated_by_the_obvious_paths(sweep):
    scan, results = sweep
    objects = [r for r in results if r.source == "identity_provider"][:8]
    objects += [decode_token(objects[0].access_token), check_binding(objects[0].access_token,
                                                                    objects[0].binding_certificate)]
    for obj in objects:
        if hasattr(obj, "access_token"):
            token = obj.access_token
        elif hasattr(obj, "token"):
            token = obj.token(reveal=True)
        else:
            token = objects[0].access_token                        # the verdict is about the first token
        for form, text in _display_forms(obj).items():
            assert token not in text and not contains_secret(text), (type(obj).__name__, form)
    frame = pd.DataFrame([r.as_dict() for r in results])
    objects_frame = pd.DataFrame({"result": results, "token_type": [r.token_type for r in results]})
    trips = pd.DataFrame([t.as_dict() for r in results for t in r.round_trips])
    for df in (frame, objects_frame, trips):
        for text in (df.to_string(), df._repr_html_(), df.to_json(default_handler=str), repr(df),
                     df.to_csv(), str(df.to_dict())):
            assert not contains_secret(text) and not any(r.access_token in text for r in results)


def test_explicit_reveal_paths_are_the_documented_ones(sweep):
    """Reading the attribute (or the object's storage) reveals, on purpose; pickling refuses."""
    _scan, results = sweep
    result = next(r for r in results if r.is_pop)
    assert result.authorization_header == f"mtls_pop {result.access_token}"
    assert vars(result)["access_token"] == result.access_token          # storage = the attribute itself
    decoded = decode_token(result.access_token)
    assert decoded.token(reveal=True) == result.access_token and decoded.token() != result.access_token
    for obj in (result, next(r for r in results if not r.is_pop), result._credential):
        with pytest.raises(Exception) as info:
            pickle.dumps(obj)
        assert not isinstance(info.value, AssertionError)
        assert result.access_token not in str(info.value) and not contains_secret(str(info.value))


def test_certificate_displays_never_include_the_key(world):
    cert = world.app.certificate
    key_pem = cert.private_key_pem().decode()
    body = "".join(key_pem.splitlines()[1:-1])[:64]
    for form, text in _display_forms(cert).items():
        assert "PRIVATE KEY" not in text and body not in text, form
    assert cert.has_private_key and not cert.public_only().has_private_key


# -- notebooks ------------------------------------------------------------------------------------
_LOGGING_CELL = """
import logging
_handler = logging.FileHandler({path!r}, encoding="utf-8")
_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
logging.getLogger().addHandler(_handler)
for _name in ("", "msal", "urllib3", "mtlspop_lab", "requests"):
    logging.getLogger(_name).setLevel(logging.DEBUG)
"""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_outputs_and_debug_logs_hold_no_secret(path, tmp_path):
    import nbformat
    from nbclient import NotebookClient
    assert NOTEBOOKS, "no notebook to execute"
    workdir = tmp_path / "nb"
    shutil.copytree(path.parent, workdir)
    log_file = tmp_path / "debug.log"
    nb = nbformat.read(workdir / path.name, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(_LOGGING_CELL.format(path=str(log_file))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(workdir)}}).execute(env=env, cwd=str(workdir))
    logs = log_file.read_text(encoding="utf-8") if log_file.exists() else ""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    if "LocalAuthority(" in code:
        assert "urllib3" in logs or "msal" in logs, "the notebook made no request: nothing was checked"
    texts = [json.dumps(o) for c in nb.cells for o in c.get("outputs", [])]
    texts += [json.dumps(nb.metadata.get("widgets", {})), logs]
    leaks = [t[:200] for t in texts if contains_secret(t)]
    assert leaks == []
