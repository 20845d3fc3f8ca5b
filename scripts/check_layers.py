"""Check the import structure of mdmserver: no import cycles, Flask only in the web and CLI
layers, and (with --layers) no layer importing one above it.

Only the standard library: imports are read with `ast`, nothing is imported. What counts:
- a cycle is a strongly connected set of modules linked by module-level imports (those run
  when the module is first imported: top level, class bodies, `try`/`if` blocks at top level).
  Imports under `if TYPE_CHECKING:` never run and are ignored; imports inside functions run
  late, so they cannot deadlock an import, but they hide a cycle: they are listed as warnings.
- Flask and Werkzeug belong to `mdmserver/web/` and `mdmserver/cli/`; an import of either
  anywhere else (at any level, TYPE_CHECKING included: a type from Flask is still a
  dependency on it) is a violation.
- the declared layer order (LAYERS below) says which package may import which; an import of
  a higher layer from a lower one is a violation (run-time imports at any level).

Run: python scripts/check_layers.py [--layers] [--json]   (exit status 1 on any violation)
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "mdmserver"
WEB_LIBRARIES = ("flask", "werkzeug")
WEB_ALLOWED = ("mdmserver.web", "mdmserver.cli")

# Lowest first: a module may import its own layer and the ones before it. Keys are module
# prefixes (the longest one that matches decides); a module matching none is unplaced and not
# checked. protocol < storage < service < features < assembly < web/cli.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "protocol",
        (
            "mdmserver.protocol",
            "mdmserver.crypto",
            "mdmserver.bounds",
            "mdmserver.config",
            "mdmserver.logs",
            "mdmserver.metrics",
            "mdmserver.catalog",
            "mdmserver.instance_files",
            # Pure message formats that storage reads too: the OTA device attributes, the
            # enrollment profile's settings, inventory answers and their values.
            "mdmserver.enrollment.profile_service",
            "mdmserver.enrollment.profile",
            "mdmserver.inventory.parse",
            "mdmserver.inventory.values",
        ),
    ),
    ("storage", ("mdmserver.storage",)),
    ("service", ("mdmserver.service", "mdmserver.commands", "mdmserver.jobs", "mdmserver.push")),
    (
        "features",
        (
            "mdmserver.enrollment",
            "mdmserver.profiles",
            "mdmserver.inventory",
            "mdmserver.compliance",
            "mdmserver.apps",
            "mdmserver.ddm",
            "mdmserver.scep",
            "mdmserver.admin",
            # Database figures for /metrics: they read the tables.
            "mdmserver.metrics.database",
        ),
    ),
    (
        "assembly",
        (
            "mdmserver.assembly",
            "mdmserver.maintenance",
            "mdmserver.backup",
            # The tasks a worker runs: each feature's (profile signing) beside push and webhooks.
            "mdmserver.jobs.tasks",
            "mdmserver.jobs.runtime",  # builds the job backend with those tasks
            "mdmserver.jobs.rq_entry",  # what an RQ worker imports to run them
        ),
    ),
    (
        "web/cli",
        (
            "mdmserver.web",
            "mdmserver.app",  # `from mdmserver.app import create_app`: web/app.py's
            "mdmserver.cli",
            "mdmserver.server",
            "mdmserver.wsgi",
            "mdmserver.simulator",
            "mdmserver.testing",
        ),
    ),
)


@dataclass(frozen=True, order=True)
class Import:
    """One imported module, as seen from `source`."""

    source: str
    target: str
    line: int
    level: str  # "module", "function" or "type" (under TYPE_CHECKING)


@dataclass
class Report:
    cycles: list[list[str]] = field(default_factory=list)  # each sorted, whole SCC
    cycle_paths: list[list[str]] = field(default_factory=list)  # one concrete loop per SCC
    web_imports: list[Import] = field(default_factory=list)
    layer_violations: list[tuple[Import, str, str]] = field(default_factory=list)
    function_level: list[Import] = field(default_factory=list)  # mdmserver-internal, warnings
    function_cycles: list[list[str]] = field(default_factory=list)  # cycles they would close

    def violations(self, *, layers: bool) -> set[str]:
        """Stable one-line keys, what tests/test_layers.py compares against its allowance."""
        found = {"cycle: " + " <-> ".join(cycle) for cycle in self.cycles}
        found |= {f"web: {i.source} imports {i.target.split('.')[0]}" for i in self.web_imports}
        if layers:
            found |= {
                f"layer: {i.source} ({low}) imports {i.target} ({high})"
                for i, low, high in self.layer_violations
            }
        return found


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(body: list[ast.stmt], level: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with the level it runs at, without recursion into expressions."""
    pending: list[tuple[ast.AST, str]] = [(statement, level) for statement in reversed(body)]
    while pending:
        node, where = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, where
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inner = "type" if where == "type" else "function"
            pending.extend((child, inner) for child in reversed(node.body))
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend((child, where) for child in reversed(node.orelse))
            pending.extend((child, "type") for child in reversed(node.body))
            continue
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if isinstance(children, list):
                pending.extend(
                    (child, where) for child in reversed(children) if isinstance(child, ast.AST)
                )
        if isinstance(node, ast.ExceptHandler | ast.match_case):
            pending.extend((child, where) for child in reversed(node.body))


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def collect(root: Path) -> tuple[set[str], list[Import]]:
    """The modules under `root` (the package directory) and every import they make."""
    files = sorted(root.rglob("*.py"))
    modules = {module_name(root, path) for path in files}
    imports: list[Import] = []
    for path in files:
        source = module_name(root, path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, level in _walk(tree.body, "module"):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(source, path.name == "__init__.py", node)
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    targets.append(candidate if candidate in modules else base)
            for target in dict.fromkeys(targets):
                imports.append(Import(source, target, node.lineno, level))
    return modules, imports


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import), iteratively
    (Tarjan's algorithm with an explicit stack)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(sorted(component))
    return sorted(found)


def _loop(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle through the component's first module (breadth-first, shortest)."""
    members = set(component)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for succ in sorted(graph[node] & members):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if succ not in parents:
                    parents[succ] = node
                    following.append(succ)
        frontier = following
    return component


def layer_of(module: str) -> tuple[int, str] | None:
    best: tuple[int, int, str] | None = None
    for rank, (name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), rank, name)
    return None if best is None else (best[1], best[2])


def analyse(root: Path) -> Report:
    modules, imports = collect(root)
    internal = [i for i in imports if i.target in modules and i.source != i.target]
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for item in internal:
        if item.level == "module":
            graph[item.source].add(item.target)
    report = Report()
    report.cycles = _sccs(graph)
    report.cycle_paths = [_loop(graph, c) for c in report.cycles]
    report.function_level = sorted(i for i in internal if i.level == "function")
    with_late = {m: set(targets) for m, targets in graph.items()}
    for item in report.function_level:
        with_late[item.source].add(item.target)
    report.function_cycles = [c for c in _sccs(with_late) if c not in report.cycles]
    report.web_imports = sorted(
        i
        for i in imports
        if i.target.split(".")[0] in WEB_LIBRARIES
        and not any(i.source == p or i.source.startswith(p + ".") for p in WEB_ALLOWED)
    )
    for item in sorted(internal):
        if item.level == "type":
            continue
        low, high = layer_of(item.source), layer_of(item.target)
        if low is not None and high is not None and high[0] > low[0]:
            report.layer_violations.append((item, low[1], high[1]))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).parent.parent / PACKAGE)
    parser.add_argument("--layers", action="store_true", help="also check the layer order")
    parser.add_argument("--json", action="store_true", help="print the violation keys as JSON")
    args = parser.parse_args(argv)
    report = analyse(args.root)
    violations = report.violations(layers=args.layers)
    if args.json:
        print(json.dumps(sorted(violations), indent=2))
        return 1 if violations else 0
    for path in report.cycle_paths:
        print("cycle:", " -> ".join(path))
    for item in report.web_imports:
        print(f"web: {item.source}:{item.line} imports {item.target} ({item.level} level)")
    if args.layers:
        for item, low, high in report.layer_violations:
            print(f"layer: {item.source}:{item.line} ({low}) imports {item.target} ({high})")
    for cycle in report.function_cycles:
        print("warning: function-level imports close a cycle:", " <-> ".join(cycle))
    print(
        f"{len(report.cycles)} cycles, {len(report.web_imports)} Flask/Werkzeug imports outside"
        f" web/cli, {len(report.layer_violations)} upward layer imports"
        f"{'' if args.layers else ' (not checked)'}, {len(report.function_level)}"
        " function-level internal imports"
    )
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
