"""The package keeps the shape docs/architecture.md draws: layers that import only downwards
(every import counts: module level, inside functions, under TYPE_CHECKING), no import cycles,
a short top level, sub-packages that say what they own, and no class too large to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "service"

# Highest first: a module may import its own layer and any layer below it, never one above.
LAYERS = [
    ("cli", {"service.__main__", "service.cli"}),
    ("http", {"service.http"}),
    ("services", {"service.services"}),
    ("core", {"service.core"}),
    ("store", {"service.store"}),
    ("engines", {"service.engines"}),
    ("audio", {"service.audio"}),
    ("text", {"service.text"}),
    ("runtime", {"service.runtime"}),
    ("base", {"service", "service.config", "service.errors"}),
]
MAX_TOP_MODULES = 8
MAX_CLASS_LINES = 350


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
# Every folder of code directly under service/ (player/ holds only the widget's files).
PACKAGES = sorted(d.name for d in PACKAGE.iterdir() if d.is_dir() and any(d.glob("*.py")))


def _layer(module: str) -> int:
    best: tuple[int, int] | None = None  # (prefix length, layer index): the longest prefix wins
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if prefix == "service" and module != "service":
                    continue  # the package itself holds only its version
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), index)
    assert best is not None, f"{module} is in no layer: add it to LAYERS and the docs"
    return best[1]


def _imports(module: str, *, named: bool) -> set[str]:
    """The langdu modules `module` imports, anywhere in its source (`named`: and the modules
    it names in a string, to import or run in a worker process)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found.update(n for n in names if n in MODULES and n != module)
    if named:
        found.update(
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in MODULES
            and node.value != module
        )
    return found


GRAPH = {m: _imports(m, named=False) for m in MODULES}
USES = {m: _imports(m, named=True) for m in MODULES}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module):
    mine = _layer(module)
    upward = sorted(
        f"{dep} ({LAYERS[_layer(dep)][0]})" for dep in USES[module] if _layer(dep) < mine
    )
    assert not upward, f"{module} ({LAYERS[mine][0]}) imports upward: {', '.join(upward)}"


def test_no_import_cycles():
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        path.append(module)
        for dep in sorted(GRAPH[module]):
            # a package's __init__ is imported by each of its modules: not a cycle of code
            if not module.startswith(dep + "."):
                visit(dep)
        path.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)


def test_the_top_level_is_short():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top


@pytest.mark.parametrize("package", PACKAGES)
def test_each_subpackage_says_what_it_owns_and_may_import(package):
    init = PACKAGE / package / "__init__.py"
    assert init.exists(), f"service/{package}/ is not a regular package"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert doc, f"service/{package}/__init__.py has no docstring"
    assert "import" in doc, f"service/{package}'s docstring does not say what it may import"


def test_no_class_is_too_large_to_read():
    large = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    large.append(f"{module}.{node.name}: {lines} lines")
    assert not large, large


def test_the_architecture_document_names_every_subpackage():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for package in PACKAGES:
        assert f"service/{package}/" in doc, f"docs/architecture.md does not mention {package}"
