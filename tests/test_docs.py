"""The documentation states what the code does: the bounds table is generated from the specs."""

from pathlib import Path

import pytest

from actverify.accuracy import bounds_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_accuracy_doc_tables_match_the_specs(backward: bool) -> None:
    text = (DOCS / "accuracy.md").read_text()
    marker = "backward-table" if backward else "bounds-table"
    start, end = f"<!-- {marker}:start -->\n", f"\n<!-- {marker}:end -->"
    table = text[text.index(start) + len(start): text.index(end)]
    assert table == bounds_markdown(backward=backward), (
        f"docs/accuracy.md's {marker} is stale; regenerate it: "
        "python docs/generate.py")
