"""The one progress display (actverify/progress.py): its plain form, for logs that are not a
terminal, and what it shows when disabled."""

from __future__ import annotations

import io

from actverify.progress import clock, human, progress


def test_a_log_gets_a_plain_line_now_and_then_and_every_message() -> None:
    out = io.StringIO()
    with progress(total=4, label="checking", unit="values", out=out, log_every=3600) as bar:
        bar(1)  # the first line comes at once, the next only after log_every seconds
        bar.say("FAILURE: something")
        bar.describe("checking sigmoid")
        bar(2)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("checking 1/4 (") and lines[0].endswith(" values/s)")
    assert lines[1:] == ["FAILURE: something"]


def test_without_a_total_the_label_is_the_whole_line() -> None:
    out = io.StringIO()
    with progress(total=None, label="[0m00s/1m00s] round 1", out=out, log_every=0) as bar:
        bar.describe("[0m15s/1m00s] round 2")
    assert out.getvalue().splitlines() == ["[0m15s/1m00s] round 2"]


def test_disabled_shows_only_messages() -> None:
    out = io.StringIO()
    with progress(total=10, label="sweep", enabled=False, out=out, log_every=0) as bar:
        bar(5)
        bar.say("done")
    assert out.getvalue() == "done\n"


def test_figures_read_at_a_glance() -> None:
    assert [human(n) for n in (3, 2.5, 12.0, 1234, 2_500_000)] == ["3", "2.5", "12", "1.2k",
                                                                   "2.5M"]
    assert clock(125.7) == "2m05s" and clock(-1) == "0m00s"
