"""The architecture of echo_lib, read from its source with `ast`: layers, lazy imports, size.

Each rule is a small function over the parsed package that returns its problems,
one line each naming the module, the line and the import. The rules are data
(the tables below), so changing the architecture means changing a table, not a
check. Nothing is imported from echo_lib: a module that fails to import still gets
checked, and the whole run takes a fraction of a second. The checker is tested
on small synthetic packages too, so a rule that stopped seeing anything would fail.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = "echo_lib"
SOURCE = Path(__file__).resolve().parent.parent / PACKAGE

# What each layer (a folder of echo_lib) may import from echo_lib, itself included.
# "" is the package's own __init__ and __main__: the public names (plot_timeline from
# view, on first use) and `python -m`.
MAY_IMPORT: Mapping[str, frozenset[str]] = {
    "": frozenset({"", "core", "driver", "view", "cli"}),
    "core": frozenset({"core"}),
    "driver": frozenset({"core", "driver"}),
    "stage": frozenset({"core", "driver", "stage"}),
    "view": frozenset({"core", "driver", "view"}),
    "lessons": frozenset({"core", "driver", "stage", "view", "lessons"}),
    "exercises": frozenset({"core", "driver", "stage", "view", "exercises"}),
    "cli": frozenset({"core", "driver", "view", "cli"}),
    "bench": frozenset({"core", "driver", "view", "bench"}),
}
# Standard modules a layer must not import at all (not even inside a function).
FORBIDDEN: Mapping[str, frozenset[str]] = {
    "core": frozenset({"socket", "socketserver", "select", "selectors", "ssl", "asyncio"}),
}
# Imported inside functions only (or under `if TYPE_CHECKING:`), in every layer.
LAZY_ONLY = frozenset({"matplotlib", "ipywidgets"})
# Layers that may import only public names (no leading underscore) from echo_lib.
PUBLIC_ONLY = frozenset({"exercises"})
MAX_LINES = 400
# No function or method body longer than this (the docstring not counted), except in the
# modules listed: the seed programs are shown whole, on purpose.
MAX_BODY = 25
LONG_FUNCTIONS_ALLOWED = frozenset({"echo_lib.stage.seed"})


@dataclass(frozen=True)
class Module:
    """One source file of the package, parsed."""

    name: str  # dotted: "echo_lib.core.timeline"; a package is named after its folder
    is_package: bool
    tree: ast.Module
    lines: int


@dataclass(frozen=True)
class Import:
    """One module an import statement loads, resolved to its absolute dotted name."""

    importer: str
    target: str  # the module loaded: "socket", "echo_lib.driver.loop"
    names: tuple[str, ...]  # the names taken from it that are not modules themselves
    line: int
    runtime: bool  # runs on import: not inside a function, not under TYPE_CHECKING

    def __str__(self) -> str:
        names = ", ".join(self.names)
        statement = f"from {self.target} import {names}" if names else f"import {self.target}"
        return f"{self.importer} line {self.line}: `{statement}`"


@dataclass(frozen=True)
class Package:
    """Every module of a package and every import in them."""

    modules: Mapping[str, Module]
    imports: tuple[Import, ...]


def module_name(path: str) -> tuple[str, bool]:
    """``"core/timeline.py"`` -> ``("echo_lib.core.timeline", False)``; __init__ is the package."""
    parts = [PACKAGE, *path.removesuffix(".py").split("/")]
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def layer(name: str) -> str:
    """The folder of echo_lib a module is in: ``"echo_lib.core.events"`` -> ``"core"``."""
    parts = name.split(".")
    return "" if len(parts) == 1 or parts[1] == "__main__" else parts[1]


def is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    return getattr(test, "id", getattr(test, "attr", None)) == "TYPE_CHECKING"


def statements(
    nodes: Iterable[ast.AST], runtime: bool = True
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under ``nodes``, with whether it runs when the module is imported."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, runtime
        elif isinstance(node, ast.If) and is_type_checking(node.test):
            yield from statements(node.body, False)
            yield from statements(node.orelse, runtime)
        else:
            lazy = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from statements(ast.iter_child_nodes(node), runtime and not lazy)


def base(module: Module, node: ast.ImportFrom) -> str:
    """The absolute name of the module a ``from ... import`` reads from."""
    if not node.level:
        return node.module or ""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    package = package.rsplit(".", node.level - 1)[0]
    return f"{package}.{node.module}" if node.module else package


def imports(module: Module, known: Container[str]) -> Iterator[Import]:
    """Each module loaded by each import in ``module``; ``from p import m`` of a module loads m."""
    for node, runtime in statements(module.tree.body):
        line = node.lineno
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module.name, alias.name, (), line, runtime)
            continue
        source = base(module, node)
        names = [alias.name for alias in node.names]
        for name in names:
            if f"{source}.{name}" in known:
                yield Import(module.name, f"{source}.{name}", (), line, runtime)
        others = tuple(name for name in names if f"{source}.{name}" not in known)
        if others:
            yield Import(module.name, source, others, line, runtime)


def package(sources: Mapping[str, str]) -> Package:
    """Parse ``{"core/timeline.py": source, ...}`` (paths relative to echo_lib/)."""
    modules = {}
    for path, text in sources.items():
        name, is_package = module_name(path)
        tree = ast.parse(text, filename=path)
        modules[name] = Module(name, is_package, tree, len(text.splitlines()))
    found = tuple(i for m in modules.values() for i in imports(m, modules))
    return Package(modules, found)


@cache
def echo_lib() -> Package:
    """The real package, read from disk once."""
    paths = sorted(SOURCE.rglob("*.py"))
    return package({p.relative_to(SOURCE).as_posix(): p.read_text() for p in paths})


def internal(target: str) -> bool:
    """Whether an import target is part of echo_lib."""
    return target == PACKAGE or target.startswith(PACKAGE + ".")


def private(name: str) -> bool:
    """``_helper`` is private; ``__init__``-style names are not."""
    return name.startswith("_") and not name.endswith("__")


# The rules: each takes the package and returns one line per problem.


def no_forbidden_modules(pkg: Package) -> list[str]:
    """A layer imports none of its FORBIDDEN standard modules (core: no sockets)."""
    problems = []
    for found in pkg.imports:
        banned = FORBIDDEN.get(layer(found.importer), frozenset())
        if found.target.partition(".")[0] in banned:
            why = f"{layer(found.importer)} may not import {', '.join(sorted(banned))}"
            problems.append(f"{found}: {why}")
    return problems


def heavy_imports_lazy(pkg: Package) -> list[str]:
    """matplotlib and ipywidgets are imported inside functions (or for type checking) only."""
    return [
        f"{found}: imported when the module is; import it inside the function that needs it"
        for found in pkg.imports
        if found.runtime and found.target.partition(".")[0] in LAZY_ONLY
    ]


def public_names_only(pkg: Package) -> list[str]:
    """Exercises take only public names (no leading underscore) from echo_lib."""
    problems = []
    for found in pkg.imports:
        if layer(found.importer) not in PUBLIC_ONLY or not internal(found.target):
            continue
        hidden = [name for name in [*found.target.split("."), *found.names] if private(name)]
        if hidden:
            why = f"{layer(found.importer)} may use public names of echo_lib only, not {hidden[0]}"
            problems.append(f"{found}: {why}")
    return problems


def every_module_in_a_layer(pkg: Package) -> list[str]:
    """Every module sits in a folder that MAY_IMPORT knows (no loose modules in echo_lib/)."""
    return [
        f"{name}: not in any layer; move it into one of {', '.join(sorted(MAY_IMPORT)[1:])}"
        for name in sorted(pkg.modules)
        if layer(name) not in MAY_IMPORT
    ]


def layers_point_down(pkg: Package) -> list[str]:
    """Each echo_lib import goes to a layer the importer's row of MAY_IMPORT allows."""
    problems = []
    for found in pkg.imports:
        allowed = MAY_IMPORT.get(layer(found.importer))
        if allowed is None or not internal(found.target) or layer(found.target) in allowed:
            continue
        where = layer(found.importer) or "echo_lib itself"
        target = layer(found.target) or "echo_lib itself"
        problems.append(f"{found}: {where} may not import {target}")
    return problems


def import_graph(pkg: Package) -> dict[str, dict[str, Import]]:
    """importer -> module it loads on import -> the import that does it.

    Loading ``a.b.c`` runs the __init__ of ``a`` and ``a.b`` first, unless the
    importer is inside them (then they are already running); ``from a.b import x``
    still needs ``a.b`` to have run up to ``x``, so that one counts.
    """
    graph: dict[str, dict[str, Import]] = {name: {} for name in pkg.modules}
    for found in pkg.imports:
        if not found.runtime or found.target not in pkg.modules:
            continue
        parts = found.target.split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            inside = found.importer == parent or found.importer.startswith(parent + ".")
            if parent in pkg.modules and not inside:
                graph[found.importer].setdefault(parent, found)
        if found.target != found.importer:
            graph[found.importer].setdefault(found.target, found)
    return graph


def reachable(graph: Mapping[str, Mapping[str, Import]], start: str) -> set[str]:
    """Every module ``start`` loads, directly or not (``start`` itself only through a cycle)."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def no_cycles(pkg: Package) -> list[str]:
    """No two echo_lib modules load each other on import, directly or through others."""
    graph = import_graph(pkg)
    reach = {name: reachable(graph, name) for name in graph}
    cycles = {
        frozenset(other for other in reach[name] if name in reach[other])
        for name in graph
        if name in reach[name]
    }
    return [
        "import cycle: "
        + "; ".join(str(graph[a][b]) for a in sorted(c) for b in graph[a] if b in c)
        for c in sorted(cycles, key=sorted)
    ]


def short_modules(pkg: Package) -> list[str]:
    """No module over MAX_LINES lines."""
    return [
        f"{name}: {module.lines} lines (at most {MAX_LINES}); split it by job"
        for name, module in sorted(pkg.modules.items())
        if module.lines > MAX_LINES
    ]


def has_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a function's first statement is a string literal (its docstring)."""
    first = node.body[0]
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the end of the function."""
    body = node.body[1:] if has_docstring(node) else node.body
    if not body:
        return 0
    return (node.end_lineno or body[-1].lineno) - body[0].lineno + 1


def functions(
    nodes: Iterable[ast.AST], prefix: str = ""
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function under ``nodes`` with its qualified name (``EchoLab.__init__``)."""
    for node in nodes:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{node.name}"
            if not isinstance(node, ast.ClassDef):
                yield name, node
            yield from functions(ast.iter_child_nodes(node), f"{name}.")
        else:
            yield from functions(ast.iter_child_nodes(node), prefix)


def short_functions(pkg: Package) -> list[str]:
    """No function or method body over MAX_BODY lines, outside LONG_FUNCTIONS_ALLOWED."""
    return [
        f"{name} line {node.lineno}: {function} has a {length}-line body"
        f" (at most {MAX_BODY}); name its steps as functions"
        for name, module in sorted(pkg.modules.items())
        if name not in LONG_FUNCTIONS_ALLOWED
        for function, node in functions(module.tree.body)
        if (length := body_lines(node)) > MAX_BODY
    ]


Rule = Callable[[Package], list[str]]
RULES: Mapping[str, Rule] = {
    "core has no sockets": no_forbidden_modules,
    "matplotlib and ipywidgets lazily": heavy_imports_lazy,
    "exercises use public names": public_names_only,
    "every module in a layer": every_module_in_a_layer,
    "layers point down": layers_point_down,
    "no import cycles": no_cycles,
    "modules are short": short_modules,
    "functions are short": short_functions,
}


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES.keys())
def test_echo_lib_keeps_the_rule(rule: Rule) -> None:
    problems = rule(echo_lib())
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


def test_the_checker_reads_the_real_tree() -> None:
    pkg = echo_lib()
    assert {"echo_lib", "echo_lib.core", "echo_lib.driver.loop"} <= set(pkg.modules)
    assert any(i.target == "echo_lib.core.timeline" for i in pkg.imports)


# The checker itself, on small synthetic packages: (name, rule, files, what the one
# problem must mention), or None where the sources keep the rule.
def code(*lines: str) -> str:
    """A source file from its lines."""
    return "\n".join(lines) + "\n"


CORE = {"__init__.py": "", "core/__init__.py": "", "driver/__init__.py": ""}
CASES: list[tuple[str, Rule, dict[str, str], list[str] | None]] = [
    (
        "core socket",
        no_forbidden_modules,
        {"core/ev.py": "import socket\n"},
        ["echo_lib.core.ev line 1", "`import socket`"],
    ),
    (
        "core selectors in a function",
        no_forbidden_modules,
        {"core/ev.py": "def f():\n    from selectors import EVENT_READ\n"},
        ["echo_lib.core.ev line 2", "`from selectors import EVENT_READ`"],
    ),
    (
        "core asyncio submodule",
        no_forbidden_modules,
        {"core/ev.py": "import asyncio.events\n"},
        ["`import asyncio.events`"],
    ),
    ("driver socket", no_forbidden_modules, {"driver/s.py": "import socket, ssl\n"}, None),
    (
        "module-level matplotlib",
        heavy_imports_lazy,
        {"view/p.py": "import matplotlib.pyplot\n"},
        ["echo_lib.view.p line 1", "`import matplotlib.pyplot`"],
    ),
    (
        "ipywidgets in a class body",
        heavy_imports_lazy,
        {"view/w.py": "class W:\n    from ipywidgets import Output\n"},
        ["echo_lib.view.w line 2", "`from ipywidgets import Output`"],
    ),
    (
        "ipywidgets in the else of TYPE_CHECKING",
        heavy_imports_lazy,
        {"view/w.py": "if TYPE_CHECKING:\n    pass\nelse:\n    import ipywidgets\n"},
        ["echo_lib.view.w line 4"],
    ),
    (
        "matplotlib lazily",
        heavy_imports_lazy,
        {
            "view/p.py": code(
                "import typing",
                "if typing.TYPE_CHECKING:",
                "    from matplotlib.axes import Axes",
                "def plot():",
                "    import matplotlib.pyplot as plt",
            )
        },
        None,
    ),
    (
        "exercise takes a private name",
        public_names_only,
        {"exercises/x.py": "from ..driver.server import EchoServer, _helper\n"},
        ["echo_lib.exercises.x line 1", "import EchoServer, _helper`", "not _helper"],
    ),
    (
        "exercise imports a private module",
        public_names_only,
        {"exercises/x.py": "def f():\n    import echo_lib.driver._impl\n"},
        ["`import echo_lib.driver._impl`"],
    ),
    (
        "exercise takes a private name of its package",
        public_names_only,
        {"exercises/__init__.py": "", "exercises/x.py": "from . import _feedback\n"},
        ["`from echo_lib.exercises import _feedback`"],
    ),
    (
        "exercise takes public names",
        public_names_only,
        {
            "exercises/__init__.py": "",
            "exercises/x.py": "from . import Feedback\nfrom os import _exit\n",
        },
        None,
    ),
    (
        "lesson takes a private name",
        public_names_only,
        {"lessons/x.py": "from ..driver.server import _helper\n"},
        None,
    ),
    ("a loose module", every_module_in_a_layer, {"timeline.py": ""}, ["echo_lib.timeline"]),
    (
        "core imports driver",
        layers_point_down,
        {"core/t.py": "from ..driver.loop import SelectorLoop\n"},
        ["echo_lib.core.t line 1", "`from echo_lib.driver.loop import SelectorLoop`", "core"],
    ),
    (
        "exercise imports a lesson in a function",
        layers_point_down,
        {"exercises/x.py": "def f():\n    from echo_lib.lessons import classic\n"},
        ["echo_lib.exercises.x line 2", "exercises may not import lessons"],
    ),
    (
        "driver imports the package's public names",
        layers_point_down,
        {"driver/loop.py": "from .. import Timeline\n"},
        ["driver may not import echo_lib itself"],
    ),
    (
        "view imports driver and core, cli imports view",
        layers_point_down,
        {
            "view/p.py": "from ..driver import loop\nimport echo_lib.core.events\n",
            "cli/__init__.py": "def main():\n    from ..view import p\n",
        },
        None,
    ),
    (
        "two modules import each other",
        no_cycles,
        {"driver/a.py": "from . import b\n", "driver/b.py": "from .a import x\n"},
        ["echo_lib.driver.a line 1", "echo_lib.driver.b line 1"],
    ),
    (
        "a package and its submodule",
        no_cycles,
        {
            "exercises/__init__.py": "from .serving import run\n",
            "exercises/serving.py": "from . import Feedback\n",
        },
        [
            "`from echo_lib.exercises import Feedback`",
            "`from echo_lib.exercises.serving import run`",
        ],
    ),
    (
        "a cycle through a third module",
        no_cycles,
        {
            "driver/a.py": "import echo_lib.driver.b\n",
            "driver/b.py": "from echo_lib.core import c\n",
            "core/c.py": "from ..driver.a import x\n",
        },
        ["echo_lib.core.c line 1", "echo_lib.driver.a line 1", "echo_lib.driver.b line 1"],
    ),
    (
        "lazy and type-only imports back",
        no_cycles,
        {
            "driver/a.py": "from . import b\n",
            "driver/b.py": code(
                "if TYPE_CHECKING:", "    from .a import x", "def f():", "    from . import a"
            ),
        },
        None,
    ),
    (
        "the package loads plot_timeline on first use",
        no_cycles,
        {
            "__init__.py": code(
                "def __getattr__(name):", "    from .view.plotting import plot_timeline"
            ),
            "view/__init__.py": "",
            "view/plotting.py": "from .. import Timeline\n",
        },
        None,
    ),
    (
        "the package imports down, modules import siblings",
        no_cycles,
        {
            "__init__.py": "from .driver.loop import Loop\n",
            "driver/loop.py": "from ..core.timeline import Timeline\n",
            "core/timeline.py": "",
        },
        None,
    ),
    ("401 lines", short_modules, {"core/long.py": "x = 1\n" * 401}, ["echo_lib.core.long: 401"]),
    ("400 lines", short_modules, {"core/long.py": "x = 1\n" * 400}, None),
    (
        "a 26-line method",
        short_functions,
        {"core/f.py": code("class C:", "    def run(self):", *["        x = 1"] * 26)},
        ["echo_lib.core.f line 2", "C.run", "26-line body"],
    ),
    (
        "a 26-line body in a nested function",
        short_functions,
        {"core/f.py": code("def outer():", "    def inner():", *["        x = 1"] * 25)},
        ["echo_lib.core.f line 1", "outer", "26-line body"],
    ),
    (
        "a 25-line function",
        short_functions,
        {"core/f.py": code("def f():", *["    x = 1"] * 25)},
        None,
    ),
    (
        "a long seed program",
        short_functions,
        {"stage/seed.py": code("def server():", *["    x = 1"] * 40)},
        None,
    ),
    (
        "a long docstring does not count",
        short_functions,
        {
            "core/f.py": code(
                "def f():", '    """Doc.', *["    more"] * 30, '    """', *["    x = 1"] * 25
            )
        },
        None,
    ),
]


@pytest.mark.parametrize(
    ("rule", "files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_checker(rule: Rule, files: dict[str, str], expected: list[str] | None) -> None:
    problems = rule(package({**CORE, **files}))
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1, problems
        assert all(part in problems[0] for part in expected), problems[0]
