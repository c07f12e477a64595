"""`actverify check` shares its plan among workers in the order that balances them (the
longest runs first) and still reports in plan order."""

from __future__ import annotations

import threading

from actverify.check import _outcomes
from actverify.outcomes import Outcome
from actverify.report import Report

DTYPES = ("float16", "bfloat16", "float32", "float64")


def outcome(dtype: str, prop: str) -> Outcome:
    return Outcome(prop, "sigmoid", "torch.sigmoid", dtype, "cpu", "default", "passed")


def test_report_keeps_plan_order_whatever_order_outcomes_arrive_in() -> None:
    plan = [(dtype, prop) for dtype in DTYPES for prop in ("signature", "accuracy")]
    report = Report(planned=len(plan))

    for place in (7, 0, 5, 2, 6, 1, 3, 4):
        report.add(outcome(*plan[place]), place=place)

    assert [(o.dtype, o.property) for o in report.outcomes] == plan
    assert [row["dtype"] for row in report.rows()] == list(DTYPES)


def test_report_without_places_keeps_the_order_of_adding() -> None:
    report = Report(outcomes=[outcome(DTYPES[0], "accuracy")])

    for dtype in DTYPES[1:]:
        report.add(outcome(dtype, "accuracy"))

    assert [o.dtype for o in report.outcomes] == list(DTYPES)


def test_several_workers_take_the_plan_from_its_end_and_every_item_comes_back_once() -> None:
    items = [(dtype, "cpu", prop) for dtype in DTYPES for prop in ("signature", "accuracy")]
    started: list[tuple[str, str, str]] = []
    lock = threading.Lock()

    def run(dtype: str, device: str, prop: str) -> Outcome:
        with lock:
            started.append((dtype, device, prop))
        return outcome(dtype, prop)

    with _outcomes(items, [run, run]) as outcomes:
        got = list(outcomes)

    assert sorted(i for i, _ in got) == list(range(len(items)))
    assert all((o.dtype, "cpu", o.property) == items[i] for i, o in got)
    assert started[:2] == [items[-1], items[-2]] or started[:2] == [items[-2], items[-1]]
