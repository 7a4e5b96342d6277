"""The layout keeps its promises: the core is pure and nothing imports in a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "storytree_build"


def test_the_core_imports_no_doit_sdk_http_or_store() -> None:
    """In a fresh interpreter, importing every core module pulls in none of the edges."""
    modules = sorted("storytree_build." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in (PACKAGE / "core").rglob("*.py") if p.stem != "__init__")
    forbidden = ["doit", "google.genai", "supabase", "httpx", "storytree_build.store", "storytree_build.providers",
                 "storytree_build.building", "storytree_build.settings", "storytree_build.bootstrap",
                 "pydantic_settings"]
    script = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
              f"print(sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in {forbidden!r})))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert len(modules) >= 10
    assert out.strip() == "[]", out


def import_graph() -> dict[str, set[str]]:
    """Every import inside the package, lazy ones included (TYPE_CHECKING blocks excluded)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for child in node.body for n in ast.walk(child)}
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skipped or not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target != "storytree_build":
                    graph[name].add(target)
    return graph


def test_there_are_no_import_cycles() -> None:
    graph = import_graph()
    assert "storytree_build.core.naming" in graph["storytree_build.core.manifest.build"]  # the graph sees imports
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend(path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt])
                return True
            if nxt not in state and visit(nxt, path + [node]):
                return True
        state[node] = 2
        return False

    assert not any(visit(m, []) for m in sorted(graph) if m not in state), " -> ".join(cycle)


def test_no_lower_layer_imports_the_composition_root() -> None:
    """Only the doit glue and the CLI, which sit above it, may import bootstrap."""
    graph = import_graph()
    above = ("storytree_build.doit_glue", "storytree_build.cli", "storytree_build.bootstrap")
    importers = sorted(m for m, targets in graph.items() if "storytree_build.bootstrap" in targets
                       and not m.startswith(above))
    assert importers == []


def test_no_constructor_takes_more_than_seven_positional_parameters() -> None:
    """Long positional lists are how wiring goes wrong unnoticed: parameter objects or keyword-only arguments."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                positional = [a for a in node.args.posonlyargs + node.args.args if a.arg != "self"]
                if len(positional) > 7:
                    found.append(f"{path.name}:{node.lineno}")
            elif isinstance(node, ast.ClassDef) and any("dataclass" in ast.unparse(d) for d in node.decorator_list):
                keyword_only = any("kw_only=True" in ast.unparse(d) for d in node.decorator_list)
                fields = [s for s in node.body if isinstance(s, ast.AnnAssign)]
                if len(fields) > 7 and not keyword_only:
                    found.append(f"{path.name}:{node.lineno} {node.name}")
    assert found == []


def test_the_readme_prints_the_one_table_of_exit_codes() -> None:
    from storytree_build.core.exit_codes import markdown_table

    readme = (PACKAGE.parent / "README.md").read_text()
    printed = readme.split("<!-- exit-codes -->\n", 1)[1].split("<!-- /exit-codes -->", 1)[0]
    assert printed == markdown_table()


def test_the_object_store_is_a_building_block() -> None:
    """storytree_build.objects depends on nothing but the error tree, the file helpers and the one URL redaction
    (builder, store, doit glue and settings use it, not the other way round)."""
    graph = import_graph()
    package = [m for m in graph if m == "storytree_build.objects" or m.startswith("storytree_build.objects.")]
    outside = {t for m in package for t in graph[m] if not t.startswith("storytree_build.objects")}
    assert len(package) >= 6
    assert outside <= {"storytree_build.core.errors", "storytree_build.core.redact", "storytree_build.files.atomic"}, \
        outside
