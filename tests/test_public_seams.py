"""The parts of sloth meet through public names: no module uses another module's private names.

Walks the syntax tree of every module of the package and flags

- ``from sloth.<module> import _name`` (and ``import sloth.<module>._name``);
- attribute access ``X._name`` where ``X`` is not ``self`` or ``cls`` and ``_name`` is not
  defined in the same module (a function, class, method or attribute it assigns), so that a
  module may use its own private names on other instances of its own classes.

Dunder names (``__version__``, ``__name__``) are public.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sloth

PACKAGE = Path(sloth.__file__).parent

#: Private names of other libraries that are their documented public API.
LIBRARY_API = {
    "_replace", "_asdict", "_fields", "_make",  # namedtuple (e.g. NumPyro's HMCState)
}

#: (module, name) uses allowed, each with its reason. Keep this short: an entry that no
#: longer occurs fails the test, so that it is removed.
ALLOWED = {
    # argparse has no public name for the action of ``store_true`` options
    ("sloth/cli/common.py", "_StoreTrueAction"),
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_names(tree: ast.Module) -> set[str]:
    """Names a module defines: functions, classes, methods, assigned names and attributes."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return names


def _private_uses(source: str, rel: str) -> list[tuple[str, int, str]]:
    """``(rel, line, name)`` of each use of another module's private name in ``source``."""
    tree = ast.parse(source, filename=rel)
    own = _defined_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sloth") \
                and not node.level:
            found += [(node.lineno, a.name) for a in node.names if _private(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level:
            found += [(node.lineno, a.name) for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("sloth")
                      and any(_private(part) for part in a.name.split("."))]
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            receiver = node.value
            if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
                continue
            if node.attr in own or node.attr in LIBRARY_API:
                continue
            found.append((node.lineno, node.attr))
    return [(rel, line, name) for line, name in found]


def test_no_module_uses_another_modules_private_names():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 30
    uses = [u for path in modules
            for u in _private_uses(path.read_text(), path.relative_to(PACKAGE.parent).as_posix())]
    violations = [f"{rel}:{line}: {name}" for rel, line, name in uses
                  if (rel, name) not in ALLOWED]
    assert not violations, "private names used across modules:\n" + "\n".join(violations)
    stale = ALLOWED - {(rel, name) for rel, _, name in uses}
    assert not stale, f"remove {sorted(stale)} from ALLOWED: they no longer occur"


def test_the_walk_finds_private_uses():
    source = (
        "from sloth.estimator import _hidden\n"
        "def f(model):\n"
        "    return model._draws(('x',)), model.public, self_like._own\n"
        "class A:\n"
        "    def _own(self):\n"
        "        return self._own, A()._own\n"
    )
    found = _private_uses(source, "sloth/probe.py")
    assert [name for _, _, name in found] == ["_hidden", "_draws"]
