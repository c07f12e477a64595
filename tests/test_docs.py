"""The documentation states what the code does: the bounds table is generated from the specs."""

from pathlib import Path

from actverify.accuracy import bounds_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_accuracy_doc_table_matches_the_specs():
    text = (DOCS / "accuracy.md").read_text()
    start, end = "<!-- bounds-table:start -->\n", "\n<!-- bounds-table:end -->"
    table = text[text.index(start) + len(start): text.index(end)]
    assert table == bounds_markdown(), (
        "docs/accuracy.md's bounds table is stale; regenerate it from "
        "actverify.accuracy.bounds_markdown()")
