"""Dependencies run one way: a lower layer never imports a higher one (STYLE.md habit 9)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"


def _imports(module: str) -> set[str]:
    """reconciler modules and top-level third-party packages a module imports (at any depth)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "reconciler":
                found |= {f"reconciler.{a.name}" for a in node.names}
            else:
                found.add(node.module if node.module.startswith("reconciler.") else node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {
                a.name if a.name.startswith("reconciler.") else a.name.split(".")[0] for a in node.names
            }
    return found


def _closure(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        for name in _imports(current):
            if name.startswith("reconciler."):
                inner = name.split(".", 1)[1]
                if inner not in seen and (PACKAGE / f"{inner}.py").exists():
                    seen.add(inner)
                    todo.append(inner)
            else:
                seen.add(name)
    return seen


# (module, what it must never reach, directly or through other modules)
RULES = [
    ("spec", {"sqlalchemy", "pydantic", "store", "desired", "state", "plan", "differ", "cli"}),
    ("state", {"sqlalchemy", "store", "plan", "differ", "render", "applier", "cli"}),
    ("audit", {"sqlalchemy", "pydantic", "store", "plan", "differ", "render", "applier", "cli"}),
    ("desired", {"sqlalchemy", "store", "state", "plan", "differ", "render", "applier", "cli"}),
    ("checks", {"pydantic", "yaml", "sqlalchemy", "store", "desired", "state", "plan", "differ", "cli"}),
    # The common case of a tenant file, read without the models (it knows desired's results, not
    # desired: load_file calls it).
    ("quickread", {"sqlalchemy", "store", "desired", "state", "plan", "differ", "cli"}),
    # Plainly written YAML by regular expressions: it knows no tenant file, only YAML's values.
    ("plainyaml", {"quickread", "desired", "tenantfile", "checks", "spec", "sqlalchemy", "store", "cli"}),
    # The message engine knows no document: the readers bring their vocabulary.
    (
        "validation",
        {
            "desired",
            "fixture",
            "windows",
            "catalog",
            "secrets",
            "sqlalchemy",
            "store",
            "state",
            "plan",
            "differ",
            "render",
            "applier",
            "stages",
            "cli",
            "cryptography",
        },
    ),
    (
        "differ",
        {
            "sqlalchemy",
            "store",
            "render",
            "applier",
            "cli",
            "pyodbc",
            "sources",
            "pydantic",
            "yaml",
            "cryptography",
            "desired",
        },
    ),
    (
        "plan",
        {"sqlalchemy", "store", "render", "applier", "cli", "pydantic", "yaml", "cryptography", "desired"},
    ),
    (
        "render",
        {"sqlalchemy", "store", "applier", "cli", "differ", "desired", "pydantic", "yaml", "cryptography"},
    ),
    ("declared", {"pydantic", "yaml", "sqlalchemy", "cryptography", "desired", "store"}),
    ("store", {"plan", "differ", "render", "applier", "cli", "desired", "stages"}),
    ("sources", {"sqlalchemy", "store", "plan", "differ", "render", "applier", "cli"}),
    # Connection strings are text: building one loads no driver and reads no catalog.
    (
        "odbc",
        {
            "pyodbc",
            "sources",
            "catalog",
            "drivers",
            "sqlalchemy",
            "store",
            "pydantic",
            "yaml",
            "cryptography",
            "cli",
        },
    ),
    ("secrets", {"sqlalchemy", "store", "plan", "cli"}),
    ("applier", {"cli", "render"}),
    ("stages", {"cli", "render"}),
    (
        "gitrepo",
        {
            "sqlalchemy",
            "pydantic",
            "yaml",
            "store",
            "desired",
            "plan",
            "differ",
            "render",
            "applier",
            "stages",
            "cli",
        },
    ),
    ("windows", {"sqlalchemy", "store", "plan", "differ", "render", "applier", "stages", "cli"}),
    ("clock", {"sqlalchemy", "store", "plan", "windows", "stages", "cli"}),
]


@pytest.mark.parametrize(("module", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_layer_does_not_import_higher_layers(module: str, forbidden: set[str]) -> None:
    reached = _closure(module)
    assert not reached & forbidden, f"reconciler.{module} reaches {sorted(reached & forbidden)}"


# Which modules may import each third-party library directly; a new module may import none of
# them until it is named here (the store is the one SQLAlchemy module, sources the one ODBC one).
LIBRARIES = {
    "sqlalchemy": {"store"},
    "pydantic": {"tenantfile", "fixture", "catalog", "windows", "validation"},
    "pydantic_core": {"checks", "fixture", "windows"},
    "cronsim": {"windows"},
    "yaml": {"strictyaml", "catalog", "commands/options", "yamlout"},
    "ruamel": {"textedit"},
    "pyodbc": {"sources"},
    "cryptography": {"secrets"},
    "deepdiff": {"planfile"},
    "rich": {"progress"},
}


def _modules() -> list[str]:
    return [p.stem for p in PACKAGE.glob("*.py")] + [
        f"commands/{p.stem}" for p in (PACKAGE / "commands").glob("*.py")
    ]


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_each_library_is_imported_only_where_it_belongs(library: str) -> None:
    importers = {m for m in _modules() if library in _imports(m)}
    assert importers <= LIBRARIES[library], f"{library} imported by {sorted(importers - LIBRARIES[library])}"


def test_only_the_entry_points_import_the_cli() -> None:
    modules = _modules()
    # __init__: reconciler.console, the console script's entry, imports it when called
    importers = [
        m for m in modules if m not in ("cli", "__main__", "__init__") and "reconciler.cli" in _imports(m)
    ]
    assert importers == []
    assert "reconciler.errors" in _imports("cli")  # the scan sees the package's own imports


def test_the_library_never_imports_the_commands() -> None:
    """Like pyinfra's api/ and pyinfra_cli/: the layers below know nothing of the command line."""
    for path in PACKAGE.glob("*.py"):
        if path.stem not in ("cli", "__main__"):
            assert not any(
                name.startswith("reconciler.commands") or name == "click" for name in _imports(path.stem)
            ), path.stem


def _is_lazy_module(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "module"
        and isinstance(node.value, ast.Name)
        and node.value.id == "lazy"
    )


def _lazy_names(module: str) -> set[str]:
    """The modules a module names with lazy.module("...") or map(lazy.module, ("...", ...)),
    as _imports spells them."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_lazy_module(node.func):
            names += node.args
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "map"
            and node.args
            and _is_lazy_module(node.args[0])
        ):
            names += [e for a in node.args[1:] if isinstance(a, ast.Tuple) for e in a.elts]
    assert all(isinstance(n, ast.Constant) and isinstance(n.value, str) for n in names), module
    return {
        n.value if n.value.startswith("reconciler.") else n.value.split(".")[0]
        for n in names
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def test_every_lazy_module_is_also_imported_for_the_checks() -> None:
    """A module loaded on first use is imported under TYPE_CHECKING as well, so that the rules
    above (and mypy) see the dependency; and lazy.module is given a literal name."""
    modules = _modules()
    named = {m: _lazy_names(m) for m in modules}
    assert "reconciler.store" in named["stages"]  # the scan sees lazy.module(...)
    for module, names in named.items():
        assert names <= _imports(module), f"{module}: {sorted(names - _imports(module))}"


def test_lazy_modules_are_a_leaf() -> None:
    """reconciler.lazy stands in for heavy modules everywhere: it may import nothing of ours."""
    assert _closure("lazy") <= {"__future__", "importlib", "types", "typing"}


def test_checker_sees_imports() -> None:
    """Guards the rules above against passing vacuously if the import scan broke."""
    assert {"sqlalchemy", "secrets", "state", "spec"} <= _closure("store")
    assert {"declared", "state", "spec", "plan"} <= _closure("differ")
