"""Regenerate the parts of the docs that are generated from the specs.

    python docs/generate.py          # rewrite them in place
    python docs/generate.py --check  # exit 1 if any is stale (tests/test_docs.py checks too)

Adding an activation is writing its spec file; this brings docs/accuracy.md's bounds tables
along.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from actverify.accuracy import bounds_markdown

DOCS = Path(__file__).resolve().parent
TABLES = {"bounds-table": lambda: bounds_markdown(backward=False),
          "backward-table": lambda: bounds_markdown(backward=True)}


def regenerated(text: str) -> str:
    """`text` with every generated table between its markers replaced by the current one."""
    for marker, table in TABLES.items():
        start, end = f"<!-- {marker}:start -->\n", f"\n<!-- {marker}:end -->"
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = head + start + table() + end + tail
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale docs")
    args = parser.parse_args()
    path = DOCS / "accuracy.md"
    old = path.read_text()
    new = regenerated(old)
    if args.check:
        if new != old:
            print(f"{path.name} is stale: run python docs/generate.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
