"""Mutation testing of the lab's security core: would the tests notice a one-line bug?

Why a driver of our own: the security core is a handful of named functions
spread over several modules (the binding decision, token verification at the
resource, the token service's cnf/FIC checks, cache keys, redaction), and each
is covered by a few test files that run in seconds. This script mutates only
those functions, one small change at a time, and runs only the tests that
cover each module, so a full pass fits in minutes on two cores.

How it works: each mutant is the module's AST with one node changed (a
comparison flipped, ``and``/``or`` swapped, a ``not`` dropped, a constant
changed, a ``.lower()`` removed, a guard disabled, a statement removed),
written back with :func:`ast.unparse` into a private copy of the repository.
The covering tests run there with ``-x`` and a per-mutant timeout; a mutant
is *killed* when they fail (or time out) and *survives* when they pass.

Usage (from the repository root)::

    python3 tools/mutate.py                  # every target, 2 workers
    python3 tools/mutate.py --only redact    # targets whose name contains "redact"
    python3 tools/mutate.py --list           # the mutants, without running anything

It prints each survivor (file:line, original -> mutant) and a score per
target and overall. It is not part of ``.ci/run``: see CONTRIBUTING.md.

Known equivalent survivors (no test can tell them apart; check a new
survivor against this list, and keep the list short by fixing the code when
a survivor shows dead code):

* binding: ``actual is not None`` inverted in ``_verdict_without_certificate``:
  it only picks which sentence ``reason`` says; ``actual`` and ``mistakes``,
  the fields tests assert, are the same either way.
* federation: ``f.issuer.rstrip("/") == iss.rstrip("/")`` inverted or its
  ``and`` made ``or`` in ``_match_issuer``: it only chooses whether the
  700211 message adds the trailing-slash hint; the code is 700211 either way.
* resource_api: ``"verify_iss": False -> True`` in ``_verify_with``: no issuer
  is passed to pyjwt, so it checks nothing; ``authorization.strip()``
  removed: the HTTP parser already strips header values.
* resource_api: ``path.split("?", 1)`` with maxsplit 2 (same first part);
  ``isinstance(roles, list) and roles`` made ``or`` in ``forbidden``: it only
  changes the 403 description's "roles: none" for an empty list (the body's
  ``roles`` field is asserted); the foreign-issuer URI lookup made
  unconditional (``and`` -> ``or``): the directory's lookup by URI also finds
  a v2 API by its application id, so the lab's own tokens get the same
  resource.
* token_verify: ``exp + leeway`` / ``moment + leeway`` sign flips: every
  caller passes ``leeway=0``; ``>`` / ``>=`` at exp and ``<`` / ``<=`` at nbf:
  they differ only at one exact instant; ``moment - exp`` in the "expired N s
  ago" text; ``verify_iat`` True: pyjwt then checks only that ``iat`` is an
  integer; ``verify_iss`` True: no issuer is passed, so pyjwt checks nothing; the compact-JWS structure check removed: pyjwt's header parser
  refuses the same tokens, with the same reason.
* token_service: the ``downgrade=False`` default of ``token()``: every caller
  passes it; ``client-request-id`` in capitals, in the lookup or as the
  answer's header name: the lookup lower-cases the name, and HTTP header
  names are case-insensitive.
* redaction: ``token.split(".", 1)[0]`` with maxsplit 2 (same first part);
  the ``if not text`` early returns of ``redact_text`` / ``contains_secret``
  removed (an empty text gives the same answer either way).
* redaction: mutants that weaken ``_may_hold_secret`` (the quick check that
  lets text without a secret skip the four substitutions): a marker string
  emptied, its ``return False`` made ``True`` or removed, the early return
  in ``redact_text`` removed or its ``or`` made ``and``. Each sends more
  text through the substitutions, which leave text without a secret as it
  is: slower, same output. The mutants that would skip a secret are killed
  by ``test_redact.py``'s one-trigger and every-field cases.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import copy
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_STOP = threading.Event()       # set by Ctrl-C / SIGTERM: no new mutant starts, running ones are ended

# ---------------------------------------------------------------------------------------------
# What to mutate, and which tests cover it. Update this table when modules move.
# name: (module file, [functions: "name" or "Class.method"; [] = every function], [pytest args])
# ---------------------------------------------------------------------------------------------
TARGETS: dict[str, tuple[str, list[str], list[str]]] = {
    "thumbprints": ("mtlspop_lab/certs/certificate.py",
                    ["b64url", "x5t_s256_of_der", "x5t_of_der", "sha1_hex_of_der",
                     "Certificate.__eq__", "Certificate.__hash__"],
                    ["tests/core/test_certs.py", "tests/inspect/test_inspect_thumbprints.py",
                     "tests/inspect/test_inspect_binding_exact.py"]),
    "thumbprint_readers": ("mtlspop_lab/certs/parse.py", ["x5t_s256", "x5t", "sha1_thumbprint"],
                           ["tests/inspect/test_inspect_thumbprints.py", "tests/inspect/test_inspect_binding_exact.py",
                            "tests/inspect/test_inspect_binding.py"]),
    "binding": ("mtlspop_lab/inspector/binding.py",
                ["check_binding", "_verdict_without_certificate", "_verdict_without_x5t_s256"],
                ["tests/inspect/test_inspect_binding.py", "tests/inspect/test_inspect_thumbprints.py",
                 "tests/inspect/test_inspect_decode.py", "tests/inspect/test_inspect_binding_exact.py"]),
    "binding_claims": ("mtlspop_lab/inspector/decode.py",
                       ["DecodedToken.x5t_s256", "DecodedToken.is_certificate_bound"],
                       ["tests/inspect/test_inspect_binding.py", "tests/inspect/test_inspect_decode.py",
                        "tests/inspect/test_inspect_binding_exact.py"]),
    "resource_api": ("mtlspop_lab/authority/resource_api.py", [],
                     ["tests/authority/test_binding_enforcement.py", "tests/authority/test_authority_resource.py",
                      "tests/authority/test_authority_app_roles.py", "tests/authority/test_authority_entra_facts.py",
                      "tests/authority/test_authority_external_issuers.py"]),
    "token_verify": ("mtlspop_lab/authority/signing.py", ["Signer.verify", "check_header"],
                     ["tests/authority/test_binding_enforcement.py", "tests/authority/test_authority_resource.py",
                      "tests/authority/test_authority_fic.py"]),
    "token_service": ("mtlspop_lab/authority/token_service.py",
                      ["TokenService.token", "TokenService._check_tls_client", "TokenService._check_federated",
                       "_matching_certificates"],
                      ["tests/authority/test_binding_enforcement.py", "tests/authority/test_token_endpoint_rules.py",
                       "tests/authority/test_authority_fic.py", "tests/authority/test_authority_bad_requests.py", "tests/authority/test_authority_msal.py",
                       "tests/authority/test_authority_tls.py", "tests/authority/test_authority_entra_facts.py",
                       "tests/guide/test_subject_name_trust.py", "tests/flows/test_fic_cross_tenant.py",
                       "tests/authority/test_authority_external_issuers.py"]),
    "federation": ("mtlspop_lab/authority/federation.py",
                   ["FederatedAssertionCheck.check", "FederatedAssertionCheck._match_issuer",
                    "FederatedAssertionCheck._match"],
                   ["tests/authority/test_binding_enforcement.py", "tests/authority/test_authority_fic.py",
                    "tests/flows/test_fic_unbound.py", "tests/authority/test_authority_external_issuers.py",
                    "tests/flows/test_fic_cross_tenant.py"]),
    "cache_keys": ("mtlspop_lab/flows/cache.py", ["CacheKey.__post_init__", "TokenCache.put", "TokenCache.state"],
                   ["tests/flows/test_cache_keys.py", "tests/flows/test_units.py",
                    "tests/flows/test_cache_and_concurrency.py"]),
    "redaction": ("mtlspop_lab/redact.py", [],
                  ["tests/core/test_redact.py", "tests/reliability/test_reliability_properties.py::"
                   "test_redaction_removes_any_embedded_token"]),
    "trace_redaction": ("mtlspop_lab/authority/trace.py", ["_safe", "redact_body", "_short"],
                        ["tests/authority/test_trace_redaction.py", "tests/authority/test_authority_knobs.py"]),
}

_COPY_IGNORE = shutil.ignore_patterns(".git", "__pycache__", ".hypothesis", ".pytest_cache", "node_modules",
                                      ".benchmarks", "*.egg-info", "test-artifacts")
_CASE_METHODS = {"lower", "upper", "casefold", "strip", "rstrip", "lstrip"}
_COMPARE_SWAP = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
                 ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.Lt: ast.LtE, ast.LtE: ast.Lt,
                 ast.Gt: ast.GtE, ast.GtE: ast.Gt}


# ---------------------------------------------------------------------------------------------
# Mutants
# ---------------------------------------------------------------------------------------------
def _is_str(node) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _string_mutant(value: str) -> str | None:
    """Compared or key strings (claim names, schemes, field names): change their case, or empty them."""
    if not value:
        return None
    if len(value) > 40 or " " in value:
        return None     # prose (messages): tests assert codes, not wording
    if value != value.lower():
        return value.lower()
    if value != value.upper():
        return value.upper()
    return ""


class _Mutator(ast.NodeTransformer):
    """Walks the target functions in a fixed order; counts mutation sites, or applies site ``target``."""

    def __init__(self, functions: list[str], target: int = -1):
        self.functions = set(functions)
        self.target = target
        self.count = 0
        self.sites: list[tuple[int, str, str]] = []     # (line, original, mutant)
        self._scope: list[str] = []
        self._active = 0
        self._in_fstring = 0
        self._keys: set[int] = set()     # string constants compared or used as a key: claim names, schemes
        self.applied = False

    # -- scope -------------------------------------------------------------------------------
    def _enter(self, node, is_function: bool):
        self._scope.append(node.name)
        qualname = ".".join(self._scope)
        hit = is_function and self._active == 0 and (not self.functions or qualname in self.functions)
        if hit:
            self._active += 1
            returns, node.returns = node.returns, None     # annotations: not behaviour
            self.generic_visit(node)
            node.returns = returns
            self._active -= 1
        elif self._active:
            self.generic_visit(node)
        else:
            for child in node.body:   # a target may be nested (a method of a class)
                self.visit(child)
        self._scope.pop()
        return node

    def visit_ClassDef(self, node):
        return self._enter(node, False)

    def visit_FunctionDef(self, node):
        return self._enter(node, True)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Expr(self, node):
        if _is_str(node.value):
            return node                                # a docstring: never a mutation site
        self.generic_visit(node)
        if self._active and isinstance(node.value, ast.Call):
            return self._site(node, ast.Pass())        # the call statement is removed
        return node

    def visit_arg(self, node):
        return node                                    # only an annotation below: not behaviour

    def visit_JoinedStr(self, node):
        self._in_fstring += 1
        self.generic_visit(node)
        self._in_fstring -= 1
        return node

    # -- sites -------------------------------------------------------------------------------
    def _site(self, node, replacement):
        """Record a site; return the replacement when it is the one to apply, else the node."""
        index = self.count
        self.count += 1
        if self.target < 0:
            try:
                self.sites.append((getattr(node, "lineno", 0), ast.unparse(node), ast.unparse(replacement)))
            except Exception:  # noqa: BLE001 - a node unparse cannot render alone
                self.sites.append((getattr(node, "lineno", 0), type(node).__name__, type(replacement).__name__))
            return node
        if index == self.target:
            self.applied = True
            return ast.copy_location(replacement, node)
        return node

    def _mark_keys(self, *nodes):
        for node in nodes:
            items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
            self._keys.update(id(i) for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str))

    def visit_Subscript(self, node):
        self._mark_keys(node.slice)
        self.generic_visit(node)
        return node

    def visit_Compare(self, node):
        self._mark_keys(node.left, *node.comparators)
        self.generic_visit(node)
        if not self._active:
            return node
        for i, op in enumerate(node.ops):
            swap = _COMPARE_SWAP.get(type(op))
            if swap is None:
                continue
            mutant = copy.deepcopy(node)
            mutant.ops[i] = swap()
            result = self._site(node, mutant)
            if result is not node:
                return result
        return node

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        if not self._active:
            return node
        mutant = copy.deepcopy(node)
        mutant.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return self._site(node, mutant)

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if self._active and isinstance(node.op, ast.Not):
            return self._site(node, copy.deepcopy(node.operand))
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if not self._active or not isinstance(node.op, (ast.Add, ast.Sub)):
            return node
        if _is_str(node.left) or _is_str(node.right):
            return node
        mutant = copy.deepcopy(node)
        mutant.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        return self._site(node, mutant)

    def visit_Constant(self, node):
        if not self._active or self._in_fstring:
            return node
        value = node.value
        if isinstance(value, bool):
            return self._site(node, ast.Constant(not value))
        if isinstance(value, int):
            return self._site(node, ast.Constant(value + 1))
        if isinstance(value, str) and id(node) in self._keys:
            changed = _string_mutant(value)
            if changed is not None:
                return self._site(node, ast.Constant(changed))
        return node

    def visit_Call(self, node):
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop", "setdefault") and node.args:
            self._mark_keys(node.args[0])
        self.generic_visit(node)
        if (self._active and isinstance(node.func, ast.Attribute) and node.func.attr in _CASE_METHODS
                and not node.args and not node.keywords):
            return self._site(node, copy.deepcopy(node.func.value))
        return node

    def visit_If(self, node):
        self.generic_visit(node)
        if self._active and node.body and isinstance(node.body[-1], (ast.Return, ast.Raise)):
            mutant = copy.deepcopy(node)
            mutant.test = ast.Constant(False)          # the guard never fires
            return self._site(node, mutant)
        return node


@dataclass(frozen=True)
class Mutant:
    target: str
    path: str
    index: int
    line: int
    original: str
    mutated: str

    def describe(self) -> str:
        return f"{self.path}:{self.line}  {_short(self.original)}  ->  {_short(self.mutated)}"


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def mutants_of(name: str) -> list[Mutant]:
    path, functions, _ = TARGETS[name]
    tree = ast.parse((ROOT / path).read_text())
    finder = _Mutator(functions)
    finder.visit(tree)
    if functions:
        missing = set(functions) - _qualnames(tree)
        if missing:
            raise SystemExit(f"{name}: no function {sorted(missing)} in {path}; update TARGETS in {__file__}")
    return [Mutant(name, path, i, line, original, mutated)
            for i, (line, original, mutated) in enumerate(finder.sites)]


def _qualnames(tree) -> set[str]:
    names: set[str] = set()

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(prefix + child.name)
                walk(child, prefix + child.name + ".")
    walk(tree, "")
    return names


def mutated_source(mutant: Mutant, source: str) -> str:
    """``source`` (the module as it was when the mutants were listed) with ``mutant`` applied."""
    _, functions, _ = TARGETS[mutant.target]
    tree = ast.parse(source)
    applier = _Mutator(functions, target=mutant.index)
    tree = applier.visit(tree)
    assert applier.applied, mutant
    return ast.unparse(ast.fix_missing_locations(tree))


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------
class Workspace:
    """A private copy of the repository where one mutant at a time is written and tested."""

    def __init__(self, base: Path, n: int):
        self.dir = base / f"w{n}"
        shutil.copytree(ROOT, self.dir, ignore=_COPY_IGNORE)

    def run(self, tests: list[str], timeout: float) -> tuple[str, float]:
        tests = _existing(tests, self.dir)
        env = dict(os.environ, PYTHONPATH=str(self.dir), PYTHONDONTWRITEBYTECODE="1")
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                   "--hypothesis-seed=0", *tests]
        start = time.monotonic()
        process = subprocess.Popen(command, cwd=self.dir, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = start + timeout
        while True:
            try:
                rc = process.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if _STOP.is_set() or time.monotonic() > deadline:
                    os.killpg(process.pid, signal.SIGKILL)      # our own session: pytest and its children
                    process.wait()
                    return ("stopped" if _STOP.is_set() else "timeout"), time.monotonic() - start
        elapsed = time.monotonic() - start
        # pytest: 0 passed, 1 a test failed, 2 interrupted (a collection error: the mutant broke an import);
        # 3-5 (internal error, usage, nothing collected) say nothing about the mutant: not counted as killed
        return {0: "survived", 1: "killed", 2: "killed"}.get(rc, f"error(rc={rc})"), elapsed

    def test(self, mutant: Mutant, tests: list[str], timeout: float) -> tuple[str, float]:
        target = self.dir / mutant.path
        original = target.read_text()
        target.write_text(mutated_source(mutant, original))
        try:
            return self.run(tests, timeout)
        finally:
            target.write_text(original)


def _existing(tests: list[str], root: Path = ROOT) -> list[str]:
    """The covering tests that exist (in the workspace copy: the repository may change during a run)."""
    return [t for t in tests if (root / t.split("::")[0]).exists()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="targets whose name contains this text")
    parser.add_argument("--jobs", type=int, default=2, help="parallel workers (default 2)")
    parser.add_argument("--timeout-factor", type=float, default=4.0,
                        help="a mutant's time limit is this times the clean run, plus 10 s")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)

    names = [n for n in TARGETS if not args.only or any(o in n for o in args.only)]
    plan = {n: mutants_of(n) for n in names}
    if args.list:
        for n in names:
            for m in plan[n]:
                print(f"{n:16} #{m.index:<3} {m.describe()}")
        print(f"{sum(map(len, plan.values()))} mutants")
        return 0

    started = time.monotonic()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: _STOP.set())
    base = Path(tempfile.mkdtemp(prefix="mtlspop-mutate-"))
    try:
        workspaces = queue.Queue()
        for i in range(max(1, args.jobs)):
            workspaces.put(Workspace(base, i))
        limits = {}
        for n in names:                                   # clean runs: the tests must pass unmutated
            tests = TARGETS[n][2]
            ws = workspaces.get()
            outcome, elapsed = ws.run(tests, timeout=600)
            workspaces.put(ws)
            if outcome != "survived":
                print(f"{n}: the covering tests fail without any mutant ({outcome}); fix them first: {tests}")
                return 2
            limits[n] = elapsed * args.timeout_factor + 10
            print(f"{n}: {len(plan[n])} mutants, clean run {elapsed:.1f} s, "
                  f"{len(_existing(tests, ws.dir))} test file(s)", flush=True)

        def job(m: Mutant):
            if _STOP.is_set():
                return m, "stopped", 0.0
            ws = workspaces.get()
            try:
                return m, *ws.test(m, TARGETS[m.target][2], limits[m.target])
            finally:
                workspaces.put(ws)

        results: dict[str, list[tuple[Mutant, str]]] = {n: [] for n in names}
        todo = [m for n in names for m in plan[n]]
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs))
        try:
            for done, (m, outcome, elapsed) in enumerate(pool.map(job, todo), 1):
                results[m.target].append((m, outcome))
                if outcome == "stopped":
                    continue
                mark = "SURVIVED" if outcome == "survived" else outcome
                print(f"[{done}/{len(todo)}] {mark:9} {elapsed:5.1f}s {m.target} #{m.index} {m.describe()}",
                      flush=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if _STOP.is_set():
            print("stopped: the scores below count only the mutants that ran")
    finally:
        shutil.rmtree(base, ignore_errors=True)

    print("\nSurvivors (a test should fail for each, or it is an equivalent mutant):")
    total = killed = 0
    for n in names:
        for m, outcome in results[n]:
            if outcome == "survived":
                print(f"  {n:16} #{m.index:<3} {m.describe()}")
    errors = [(m, o) for n in names for m, o in results[n] if o.startswith("error")]
    for m, outcome in errors:
        print(f"  ERROR {outcome} {m.target} #{m.index} {m.describe()}")
    print("\nScore (killed / mutants that ran; a timeout counts as killed):")
    for n in names:
        ran = [o for _, o in results[n] if not o.startswith("error") and o != "stopped"]
        k = sum(1 for o in ran if o != "survived")
        total += len(ran)
        killed += k
        print(f"  {n:16} {k:4}/{len(ran):<4} {100 * k / max(1, len(ran)):5.1f}%")
    print(f"  {'overall':16} {killed:4}/{total:<4} {100 * killed / max(1, total):5.1f}%   "
          f"({time.monotonic() - started:.0f} s, {args.jobs} workers, {len(errors)} errors)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
