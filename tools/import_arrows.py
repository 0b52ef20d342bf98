"""Count the import arrows of the package: between units, between layers, and those running back up.

    python3 tools/import_arrows.py [mtlspop_lab] [--list] [--all]

A *unit* is a top-level module or a sub-package (``flows``, ``transport.py``
before the folders existed). An *arrow* is a distinct pair (unit A imports
unit B) made by a module-level import, that is one outside every function
body (``if TYPE_CHECKING:`` blocks count); ``--all`` counts the imports
inside functions too (the hidden arrows). The front door (``__init__``,
``_lazy``) is left out: it names everything on purpose.

Each unit belongs to a *layer*, ranked by the lab's data flow (CONTRIBUTING.md):

    5 cli, widgets  >  4 workshop, latency, interop  >  3 flows  >  2 transport, inspector
      >  1 authority  >  0 base (errors, redact, certs, cloud, pool, _html)

Top-level modules of the flat layout before the folders (``inspect.py``,
``bench.py``...) are given the layer they moved to; a module inside a folder
belongs to that folder's layer, where it lived then (``flows/retry.py`` was
flows, ``widgets/_html.py`` widgets). A *back arrow* goes from a lower layer to a higher one (up the order);
a *side arrow* joins two different layers of the same rank. Prints arrows
between units and between layers, back and side arrows, and the largest
module last. Read-only; imports nothing of the package.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

LAYER_RANK = {"cli": 5, "widgets": 5, "workshop": 4, "latency": 4, "interop": 4, "inspector": 2,
              "flows": 3, "transport": 2, "authority": 1, "base": 0}
# unit -> layer, for units whose name is not their layer (the flat layout included)
UNIT_LAYER = {
    "errors": "base", "redact": "base", "_html": "base", "certs": "base", "cloud": "base", "pool": "base",
    "transport": "transport", "sequence": "transport",
    "inspect": "inspector", "claims": "inspector", "bench": "latency", "charts": "latency",
    "checklist": "workshop", "troubleshoot": "workshop", "decision": "workshop", "demo": "workshop",
    "cli": "cli", "inspect_cli": "cli", "bench_cli": "cli",
    "oidc_provider": "interop", "rfc8705": "flows", "capabilities": "flows",
}
FRONT_DOOR = {"__init__", "_lazy"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def targets(module: str, node: ast.AST, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = module.split(".")
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        name = ".".join(base + ([node.module] if node.module else []))
    else:
        name = node.module or ""
    return [name] + [f"{name}.{alias.name}" for alias in node.names]


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(module: str) -> str:
    unit = unit_of(module)
    return UNIT_LAYER.get(unit, unit)


def main(argv: list[str]) -> int:
    root = Path(next((a for a in argv if not a.startswith("-")), "mtlspop_lab")).resolve()
    listing = "--list" in argv
    everything = "--all" in argv
    modules = {module_name(p, root): p for p in root.rglob("*.py") if "node_modules" not in p.parts}
    unit_arrows, layer_arrows = set(), set()
    sizes = {}
    for module, path in modules.items():
        text = path.read_text(encoding="utf-8")
        sizes[module] = len(text.splitlines())
        if unit_of(module) in FRONT_DOOR:
            continue
        tree = ast.parse(text)
        inside = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or (id(node) in inside and not everything):
                continue
            hits = {t for t in targets(module, node, path.name == "__init__.py") if t in modules and t != module}
            hits = {t for t in hits if not any(o != t and o.startswith(t + ".") for o in hits)} or hits
            for target in hits:
                if unit_of(target) in FRONT_DOOR:
                    continue
                if unit_of(target) != unit_of(module):
                    unit_arrows.add((unit_of(module), unit_of(target)))
                if layer_of(target) != layer_of(module):
                    layer_arrows.add((layer_of(module), layer_of(target)))
    back = sorted(a for a in layer_arrows if LAYER_RANK.get(a[0], -1) < LAYER_RANK.get(a[1], -1))
    side = sorted(a for a in layer_arrows if a[0] != a[1] and LAYER_RANK.get(a[0]) == LAYER_RANK.get(a[1]))
    unknown = sorted({l for a in layer_arrows for l in a if l not in LAYER_RANK})
    if listing:
        for a, b in sorted(unit_arrows):
            print(f"unit  {a} -> {b}")
        for a, b in sorted(layer_arrows):
            print(f"layer {a} -> {b}")
    for a, b in back:
        print(f"BACK  {a} -> {b}")
    for a, b in side:
        print(f"side  {a} -> {b}")
    if unknown:
        print("layers without a rank:", ", ".join(unknown))
    largest = max(sizes, key=sizes.get)
    print(f"units {len({unit_of(m) for m in modules} - FRONT_DOOR)}, unit arrows {len(unit_arrows)}, "
          f"layer arrows {len(layer_arrows)}, back arrows {len(back)}, side arrows {len(side)}, "
          f"largest module {largest} ({sizes[largest]} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
