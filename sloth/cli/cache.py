"""``sloth cache``: list or clear the user cache (default fits, compiled programs).

::

    sloth cache [list] [--json]
    sloth cache clear [--all] [--json]

``clear`` removes the cached default fits (``sloth forecast`` without ``--posterior`` fits
again on its next call); ``--all`` also removes JAX's compiled programs. Downloaded data
files are kept (they are verified by checksum and never stale).
"""

from __future__ import annotations

import argparse
from typing import Any

from sloth.cli.common import HelpFormatter, print_json


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def cmd_cache(args: argparse.Namespace) -> int:
    """List or clear the cache."""
    from sloth.cache import clear_cache, list_cache
    from sloth.data.sources import cache_dir

    if args.action == "clear":
        parts = ("fits", "jax") if args.all else ("fits",)
        removed = clear_cache(parts)
        if args.json:
            print_json({"cache_dir": str(cache_dir()), "removed": [str(p) for p in removed]})
        else:
            print("removed " + (", ".join(str(p) for p in removed) if removed else "nothing")
                  + f" (cache: {cache_dir()})")
        return 0
    entries = list_cache()
    if args.json:
        print_json({"cache_dir": str(cache_dir()), "entries": [e.to_dict() for e in entries]})
        return 0
    print(f"sloth cache: {cache_dir()}")
    if not entries:
        print("  (empty)")
    for entry in entries:
        print(f"  {entry.kind:<4} {_size(entry.bytes):>9}  {entry.path.name}  {entry.description}")
    return 0


def add_cache_parser(sub: Any) -> None:
    """Register ``sloth cache``."""
    p = sub.add_parser(
        "cache", formatter_class=HelpFormatter, help="list or clear the user cache",
        description=__doc__.split("\n\n", 1)[0] + "\n\n" + __doc__.split("\n\n", 2)[2])
    p.add_argument("action", nargs="?", choices=("list", "clear"), default="list",
                   help="list the entries, or clear them")
    p.add_argument("--all", action="store_true",
                   help="with clear: also remove JAX's compiled programs")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_cache)
