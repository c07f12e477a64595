"""The verifier catches real bugs: every planted bug (tests/planted.py) is found by the property
named for it, with evidence a person can act on and a replay command that works.

The search runs without Hypothesis's shrink phase: what is tested here is that the property
finds the bug and says why, and shrinking every one of ~50 failures would cost about a minute.
`test_replay_reproduces_the_failure` runs the full pipeline (search, shrink, replay file,
replay) for a few bugs.

Library problems found while writing these tests are pinned down as xfails: `KNOWN_MISSES`
(bugs a property misses today) and strict ones at the end of this file, so that they are
visible and a fix shows up as an unexpected pass.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import InvalidArgument

from actverify.accuracy import DEFAULT
from actverify.devices import STAND_IN, available_devices, is_second_device
from actverify.dtypes import float_format
from actverify.properties import Subject, all_properties, properties_for
from actverify.runner import Outcome, format_failure, main_replay, run_property
from actverify.strategies import neighbourhood
from actverify.targets import Target
from tests import planted
from tests.planted import BUGS, PlantedBug

SEARCH = settings(max_examples=100, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck),
                  phases=[Phase.explicit, Phase.generate])
SEARCH_AND_SHRINK = settings(SEARCH, phases=list(Phase))

# (bug, property) pairs a property misses because of a library problem, with why; xfail, not
# strict, since whether a miss shows depends on what the derandomized search draws.
KNOWN_MISSES: dict[tuple[str, str], str] = {}  # none today


def target_of(bug: PlantedBug) -> Target:
    """The planted kernel as a target, loadable again by its source (for replay)."""
    return Target(name=f"planted.{bug.name}", activation=bug.activation, fn=bug.fn,
                  inplace=bug.inplace, source=f"tests.planted:{bug.name}")


def device_of(bug: PlantedBug) -> str:
    """Where the bug shows: its device, or the stand-in second device (cpu:1) for a bug of
    an accelerator that this machine lacks."""
    absent = bug.device not in available_devices()
    return STAND_IN if absent and is_second_device(bug.device) else bug.device


def hunt(bug: PlantedBug, replay_dir: Path, search: settings = SEARCH) -> Outcome:
    """Run the property named for `bug` against it, as `actverify check` would."""
    subject = Subject(target_of(bug), float_format(bug.dtype), device_of(bug), DEFAULT)
    return run_property(all_properties()[bug.catches], subject, settings=search,
                        replay_dir=replay_dir)


def explain(outcome: Outcome) -> str:
    """What went wrong, for an assertion message."""
    if outcome.status == "failed":
        return format_failure(outcome)
    return f"status {outcome.status}: {outcome.reason or 'the property held'}"


def case_id(bug: PlantedBug) -> str:
    return f"{bug.name}-{bug.catches}"


def marks_of(bug: PlantedBug) -> tuple[pytest.MarkDecorator, ...]:
    reason = KNOWN_MISSES.get((bug.name, bug.catches))
    if reason is None:
        return ()
    return (pytest.mark.xfail(strict=False, raises=AssertionError, reason=reason),)


CASES = [pytest.param(bug, id=case_id(bug), marks=marks_of(bug)) for bug in BUGS]


@pytest.mark.parametrize("bug", CASES)
def test_planted_bug_is_caught_with_evidence(bug: PlantedBug, tmp_path: Path) -> None:
    """The property fails, for the planted reason, with a message, the offending values
    (an ULP error for accuracy) and a replay command whose file exists."""
    target = target_of(bug)
    applicable = [p.name for p in properties_for(target, bug.dtype, device_of(bug))]
    assert bug.catches in applicable, f"{bug.catches} does not apply to {bug.activation}"
    outcome = hunt(bug, tmp_path)
    assert outcome.status == "failed", f"{bug.name} escaped {bug.catches}: {explain(outcome)}"
    failure = outcome.failure
    assert failure.message, format_failure(outcome)
    assert any(fragment in failure.message for fragment in bug.evidence), (
        f"caught, but not for the planted reason (expected one of {bug.evidence}):\n"
        + format_failure(outcome))
    command = shlex.split(failure.replay or "")
    assert command[:4] == ["python", "-m", "actverify", "replay"], failure.replay
    assert Path(command[4]).is_file(), failure.replay
    if bug.catches == "accuracy":
        assert failure.ulp_error is not None, format_failure(outcome)


def test_every_property_has_a_planted_bug() -> None:
    """No property is unproven: each one has a bug it is shown to catch (known misses do not
    count; the cross-device ones on the stand-in second device where no accelerator is)."""
    proven = {bug.catches for bug in BUGS if (bug.name, bug.catches) not in KNOWN_MISSES}
    assert sorted(set(all_properties()) - proven) == []


def test_planted_bugs_are_distinct() -> None:
    """Each (kernel, property) pair is planted once, and each kernel is registered under its
    module attribute (replay files load it by that name)."""
    assert len({case_id(bug) for bug in BUGS}) == len(BUGS)
    assert all(getattr(planted, bug.name) is bug.fn for bug in BUGS)
    assert len({bug.name for bug in BUGS}) >= 30


REPLAYED = {
    "relu_mask_multiply-limits": (),
    "tanh_cancellation-accuracy": (),
    "sigmoid_where_branches-gradient_accuracy": (),
}


@pytest.mark.parametrize("bug", [pytest.param(bug, id=case_id(bug), marks=REPLAYED[case_id(bug)])
                                 for bug in BUGS if case_id(bug) in REPLAYED])
def test_replay_reproduces_the_failure(bug: PlantedBug, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Search, shrink, save: `python -m actverify replay FILE` re-runs the saved case, prints
    the failure again and exits 1."""
    outcome = hunt(bug, tmp_path, SEARCH_AND_SHRINK)
    assert outcome.status == "failed", explain(outcome)
    path = shlex.split(outcome.failure.replay)[-1]
    capsys.readouterr()
    assert main_replay(path) == 1
    printed = capsys.readouterr().out
    assert f"{bug.catches} violated by" in printed and outcome.failure.message in printed


def test_a_target_failing_two_ways_is_reported_as_failed(tmp_path: Path) -> None:
    """With shrinking on (every profile of the library), a kernel that crashes on 0-d
    input and on empty input is still a failed property, not an error of the tool."""
    bug = next(b for b in BUGS if b.name == "softmax_rows_view")
    outcome = hunt(bug, tmp_path, SEARCH_AND_SHRINK)
    assert outcome.status == "failed", explain(outcome)


def test_zero_threshold_neighbourhood_holds_negative_zero() -> None:
    """Values near a threshold of 0 include both zeros: the sign of zero is where tanh and
    IEEE maximum differ from naive kernels."""
    near = neighbourhood(float_format("float32"), (0.0,))
    assert any(v == 0 and math.copysign(1.0, v) < 0 for v in near)
