"""House rules of the source tree: small files, short functions, no import cycle."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import conforto

SRC = Path(conforto.__file__).parent
MAX_FILE_LINES = 600
#: Lines of a function's body, its docstring excluded.
MAX_FUNCTION_LINES = 60
REPO = SRC.parents[1]


@cache
def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = ["conforto", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, package: str, known: set[str], *, typing: bool = True) -> set[str]:
    """The ``known`` modules a module (in ``package``, for relative imports) imports, at any
    depth; those of ``TYPE_CHECKING`` blocks too unless ``typing`` is false (a type is a
    dependency on its layer, but an import the interpreter never runs makes no cycle)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if not typing and isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:  # `from pkg import module` imports the module
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        for inner in ast.iter_child_nodes(node):
            visit(inner)

    visit(tree)
    return {name for name in found if name in known}


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body, from its first statement after the docstring."""
    first: ast.stmt = node.body[0]
    if len(node.body) > 1 and isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        first = node.body[1]
    return (node.end_lineno or node.lineno) - first.lineno + 1


def test_files_and_functions_stay_small() -> None:
    too_long = []
    for module, path in _modules().items():
        text = path.read_text()
        if text.count("\n") > MAX_FILE_LINES:
            too_long.append(f"{module}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if (length := _body_lines(node)) > MAX_FUNCTION_LINES:
                too_long.append(f"{module}.{node.name}: {length} lines")
    assert too_long == []


def test_nothing_is_squeezed_past_the_formatter() -> None:
    suppressed = [
        f"{path.relative_to(REPO)}:{number}"
        for folder in ("src", "tests", "bench", "examples")
        for path in sorted((REPO / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "fmt: " + "skip" in line or "fmt: " + "off" in line
    ]
    assert suppressed == []


@cache
def _graph(*, typing: bool = True) -> dict[str, set[str]]:
    """Every module and the project modules it imports (function-level imports included, those
    of ``TYPE_CHECKING`` blocks unless ``typing`` is false): read once, for every test of the
    layers."""
    modules = _modules()
    known = set(modules)
    return {
        m: _imports(
            ast.parse(p.read_text()),
            m if p.name == "__init__.py" else m.rpartition(".")[0],
            known,
            typing=typing,
        )
        - {m}
        for m, p in modules.items()
    }


#: The top-level modules: every layer may import them, and they import only each other.
FOUNDATION = ("settings", "errors", "fileio", "lineage", "reports", "notify")
#: What each package may import besides the foundation and itself (a package or one module).
#: Lower layers first; ``docs/`` and each package's docstring say the same.
LAYERS: dict[str, tuple[str, ...]] = {
    "data": (),
    "physics": ("data",),
    "scoring": ("data",),
    "uncertainty": ("scoring", "data"),
    "adaptation": ("scoring", "data"),
    "model": ("adaptation", "uncertainty", "scoring", "physics", "data"),
    "training": ("model", "adaptation", "uncertainty", "scoring", "physics", "data"),
    "tracking": ("model",),
    "predictions": (),
    "monitor": ("predictions", "tracking", "model", "uncertainty", "scoring", "physics", "data"),
    "registry": ("tracking", "model", "uncertainty", "scoring", "physics", "data"),
    "lifecycle": (
        "registry",
        "monitor",
        "tracking",
        "training",
        "model",
        "uncertainty",
        "scoring",
        "physics",
        "data",
    ),
    # the service reads the production pointer and a download's registration record, never
    # the registry, training or trackers
    "serving": (
        "registry.pointer",
        "registry.registration",
        "predictions",
        "model",
        "adaptation",
        "uncertainty",
        "physics",
        "data",
    ),
    "deploy": ("registry.pointer", "model", "data"),
    "cli": ("*",),
}
#: Entry points at the top: imported by nothing of the project's. The package itself
#: (``conforto``, its ``__init__``: the public API) is one too: it names every layer's.
ENTRY_POINTS = ("__main__", "pyfunc")
ROOT = "conforto"


def _public_name(name: str) -> str:
    """A module's name without its private underscore: ``_serving.state`` is ``serving.state``
    (``__main__`` stays).
    """
    return name if name.startswith("__") else name.removeprefix("_")


def _layer(module: str) -> str:
    """The layer's name: ``conforto._serving.state`` is in ``serving``."""
    parts = module.split(".")
    return _public_name(parts[1]) if len(parts) > 1 else ""


def _allowed(module: str, imported: str) -> bool:
    if module == ROOT:
        return True
    own, target = _layer(module), _layer(imported)
    if target in FOUNDATION or target in ("", own):
        return True
    if own in ENTRY_POINTS:
        return True
    rules = () if own in FOUNDATION else LAYERS[own]
    name = _public_name(imported.removeprefix("conforto."))
    return "*" in rules or any(name == r or name.startswith(f"{r}.") for r in rules)


def test_every_module_belongs_to_a_layer() -> None:
    layers = {_layer(m) for m in _modules()} - {""}
    assert layers - set(LAYERS) - set(FOUNDATION) - set(ENTRY_POINTS) == set()
    assert len([m for m in _modules() if m.count(".") == 1 and _layer(m) not in LAYERS]) <= 12


#: The public surface's modules: the package (its API), its errors, the loader registered
#: MLmodels name, and ``python -m conforto``. Everything else is internal.
PUBLIC = ("conforto", "conforto.errors", "conforto.pyfunc", "conforto.__main__")


def test_internals_are_private_modules() -> None:
    public = [m for m in _modules() if m not in PUBLIC and not m.split(".")[1].startswith("_")]
    assert public == []


def test_every_package_says_what_it_may_import() -> None:
    silent = [
        package
        for package in LAYERS
        if "May import:"
        not in (
            ast.get_docstring(ast.parse((SRC / f"_{package}" / "__init__.py").read_text())) or ""
        )
    ]
    assert silent == []


def test_imports_follow_the_layers() -> None:
    broken = sorted(
        f"{module} imports {imported}"
        for module, imported_set in _graph().items()
        for imported in imported_set
        if not _allowed(module, imported) or _layer(imported) in ENTRY_POINTS or imported == ROOT
    )
    assert broken == []


def test_the_service_never_reaches_training_trackers_or_the_monitor() -> None:
    graph, seen = _graph(), set()
    todo = [m for m in graph if _layer(m) == "serving"]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    assert {_layer(m) for m in seen} & {"training", "tracking", "monitor", "lifecycle"} == set()
    # the files the registry leaves: the production pointer, a download's registration record
    files = {"conforto._registry.pointer", "conforto._registry.registration"}
    assert {m for m in seen if _layer(m) == "registry"} == files


def test_the_layer_rules_refuse_an_upward_import() -> None:
    assert _allowed("conforto._training.train", "conforto._model.artifact")
    assert not _allowed("conforto._model.artifact", "conforto._training.train")
    assert not _allowed("conforto._serving.state", "conforto._registry.model_registry")
    assert _allowed("conforto._serving.state", "conforto._registry.pointer")
    assert not _allowed("conforto._settings", "conforto._uncertainty.sets")


def test_no_import_cycle() -> None:
    graph = _graph(typing=False)
    cycles: list[list[str]] = []
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            walk(nxt, [*path, node])
        done.add(node)

    for module in sorted(graph):
        walk(module, [])
    assert cycles == []


def test_the_cycle_finder_sees_function_level_imports() -> None:
    known = {"conforto.a", "conforto.b"}
    inside = ast.parse("def f():\n    from conforto.b import x\n")
    assert _imports(inside, "conforto", known) == {"conforto.b"}
    hidden = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import conforto.b\n"
    assert _imports(ast.parse(hidden), "conforto", known, typing=False) == set()


def test_the_layer_rules_count_type_only_imports() -> None:
    """A type from a higher layer is a dependency on it, though the import runs only for the
    type checker: the foundation typing against the registry's records breaks the layers."""
    planted = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from conforto._registry.audit import Move\n"
    )
    known = set(_modules())
    imported = _imports(ast.parse(planted), "conforto", known)
    assert imported == {"conforto._registry.audit"}
    assert not _allowed("conforto._notify", "conforto._registry.audit")


def test_no_module_of_the_service_starts_a_command() -> None:
    """The service reaches what it needs through what it was given (a version resolver), never
    by running a command (`conforto model show` as a subprocess took 4-9 s under the swap lock).
    The prediction log's writer process is the log's own (:mod:`conforto._predictions`)."""
    starters = {"subprocess", "os.system", "os.popen", "os.execv", "os.spawnv", "pty"}
    found = []
    for module, path in _modules().items():
        if _layer(module) != "serving":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                names = [f"{node.value.id}.{node.attr}"]
            found += [f"{module}: {name}" for name in names if name in starters]
    assert found == []
