"""sloth uses NumPyro and JAX through their public names only, so that a new release that
keeps its public API keeps sloth working (and the version pins in pyproject.toml hold)."""

from __future__ import annotations

import ast
from pathlib import Path

import sloth

PACKAGE = Path(sloth.__file__).resolve().parent
WATCHED = ("numpyro", "jax", "jaxlib")


def _private(dotted: str) -> bool:
    """A dotted name with a part that starts with one underscore (``__init__``-style names
    are public)."""
    return any(part.startswith("_") and not (part.startswith("__") and part.endswith("__"))
               for part in dotted.split("."))


def _watched(module: str) -> bool:
    return module.split(".")[0] in WATCHED


def private_uses(source: str) -> list[str]:
    """Private names of NumPyro or JAX that ``source`` imports or reaches by attribute,
    anywhere in the module (imports inside functions included)."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> dotted module or object of a watched package
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _watched(alias.name):
                    if _private(alias.name):
                        found.append(f"line {node.lineno}: import {alias.name}")
                    local = alias.asname or alias.name.split(".")[0]
                    aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _watched(node.module):
                for alias in node.names:
                    dotted = f"{node.module}.{alias.name}"
                    if _private(dotted):
                        found.append(f"line {node.lineno}: from {node.module} import "
                                     f"{alias.name}")
                    aliases[alias.asname or alias.name] = dotted
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parts = []
            base = node
            while isinstance(base, ast.Attribute):
                parts.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                dotted = ".".join([aliases[base.id], *reversed(parts)]).split(".")
                for end in range(1, len(dotted) + 1):  # up to its first private part
                    if _private(".".join(dotted[:end])):
                        found.append(f"line {node.lineno}: {'.'.join(dotted[:end])}")
                        break
    return sorted(set(found))


def test_the_checker_sees_every_kind_of_private_use():
    source = '''
import jax
import numpyro.infer as ni
from numpyro.infer.util import _get_model_transforms, potential_energy

def f():
    from jax._src import xla_bridge
    return jax._src.config, ni.util._guess_max_plate_nesting, jax.numpy.zeros
'''
    found = private_uses(source)
    assert len(found) == 4, found
    assert not private_uses("import jax\nfrom numpyro.infer.util import ParamInfo\n"
                            "x = jax.config.values\ny = jax.numpy.zeros(3).__array__()\n")


def test_no_module_uses_a_private_name_of_numpyro_or_jax():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20
    offenders = {str(path.relative_to(PACKAGE.parent)): uses for path in modules
                 if (uses := private_uses(path.read_text()))}
    assert not offenders, f"private NumPyro/JAX names in use: {offenders}"
