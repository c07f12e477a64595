"""Run properties against targets through Hypothesis and keep what was learned.

`run_property` is the one place where a property meets Hypothesis: it builds the test, gives
it a database key of its own, collects figures, and turns the shrunk failure into a `Failure`
with a replay file.  Everything else (pytest suite, `actverify report`, `actverify check`)
calls it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hypothesis import given, settings as Settings
from hypothesis.errors import FlakyFailure

from actverify import properties as _registry  # noqa: F401  (registers the properties)
from actverify.accuracy import Policy, policy_named
from actverify.dtypes import float_format
from actverify.fuzzing.records import track_progress  # live figures of `actverify fuzz`
from actverify.outcomes import Failure, Outcome, _bits, format_failure, mark_timed_out
from actverify.profiles import profile_settings
from actverify.properties import Property, Subject, Violation
from actverify.properties.base import _HUNG, CALL_TIMEOUT, TargetMisbehaved, observing
from actverify.strategies import Case
from actverify.targets import Target
from actverify.threads import limited as limited_threads
from actverify.threads import resolve as resolve_threads

REPLAY_DIR = Path(".actverify") / "replay"


def _save_replay(subject: Subject, prop: Property, case: Case, directory: Path) -> str | None:
    from actverify.replays import portable_reference, reference_of, replay_command

    # Portable: the target as an import path or relative to `root` (actverify/replays.py).
    root = Path.cwd()
    target = subject.target
    reference = (portable_reference(target.source, root) if target.source is not None
                 else reference_of(target.fn, root))
    blob = {"property": prop.name, "target": reference, "target_name": target.name,
            "root": str(root.resolve()),
            "activation": subject.target.activation, "dtype": subject.fmt.name,
            "device": subject.device, "policy": subject.policy.name,
            "params": dict(case.params), "layout": case.layout, "knobs": dict(case.knobs),
            **case.tensors()}
    digest = hashlib.sha1(repr((prop.name, reference or target.name, subject.fmt.name,
                                subject.device, subject.fmt.bits_of(case.x.cpu()).numpy().tobytes(),
                                sorted(case.params.items()))).encode()).hexdigest()[:12]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{prop.name}-{subject.target.activation}-{subject.fmt.name}-{digest}.pt"
    torch.save(blob, path)
    # A callable the Python API checked gets the Python call that re-runs it with itself.
    return replay_command(path, loadable=target.source is not None or reference is not None,
                          kernel_name=getattr(target.fn, "__name__", None) or target.name)


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out = []
    for e in group.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out


def failure_from(v: Violation, subject: Subject, prop: Property, case: Case,
                 replay_dir: Path | None) -> Failure:
    fmt = subject.fmt
    drawn = getattr(v, "drawn", None) or case or v.case
    case = v.case or case
    return Failure(
        message=v.message, x=v.x, x_bits=_bits(fmt, v.x), index=list(v.index or []) or None,
        expected=v.expected, expected_bits=_bits(fmt, v.expected),
        actual=v.actual, actual_bits=_bits(fmt, v.actual), ulp_error=v.ulp_error,
        input_shape=list(case.x.shape), layout=case.layout, params=dict(case.params),
        # No directory: a replay of a saved case, which keeps its file as it is.
        replay=(_save_replay(subject, prop, drawn, replay_dir)
                if drawn is not None and replay_dir is not None else None),
        details={k: v for k, v in v.details.items() if isinstance(v, (int, float, str))},
    )


# Bumped when the meaning of a stored example changes (what `Case` a choice sequence draws):
# example databases then start afresh instead of replaying what no longer fits.
_KEY_VERSION = b"actverify-property-run-1"


def _identify(test: Callable, *, key: str, derandomize: bool) -> None:
    """Give a run's Hypothesis test its database key and, when derandomized, its seed, both
    from `key` (property, kernel, dtype, device, policy).  Why not Hypothesis's own: it derives
    both from the test function's source, re-read and tokenized on every call (the test is a
    closure built per run): about 3 ms of CPU per run, as much as a whole example."""
    digest = hashlib.sha384(_KEY_VERSION + b"\0" + key.encode()).digest()
    test._hypothesis_internal_database_key = digest
    if derandomize:  # the same examples in every run of this key, as `derandomize` means
        test._hypothesis_internal_use_seed = int.from_bytes(digest, "big")


def run_property(prop: Property, subject: Subject, *, settings: Settings | None = None,
                 replay_dir: Path = REPLAY_DIR, call_timeout: float | None = None) -> Outcome:
    """Search for a counterexample to `prop` on `subject`; return what happened.

    `call_timeout` bounds each call of the target (a hang becomes a finding, not a stuck run).
    """
    outcome = Outcome(prop.name, subject.target.activation, subject.target.name,
                      subject.fmt.name, subject.device, subject.policy.name, "passed",
                      kind=prop.kind)
    if not subject.target.supports(subject.fmt, subject.device):
        outcome.status, outcome.reason = "not_checked", "outside what the target declares"
        return outcome
    last: dict[str, Case] = {}

    def sink(metric: str, value: float, x: float | None, bound: float | None) -> None:
        if metric == "ulp" and (outcome.max_ulp is None or value > outcome.max_ulp):
            outcome.max_ulp, outcome.max_ulp_x, outcome.max_ulp_bound = value, x, bound
        if metric == "own_ulp" and (outcome.own_ulp is None or value > outcome.own_ulp):
            outcome.own_ulp, outcome.own_ulp_x, outcome.own_ulp_bound = value, x, bound

    @given(case=prop.inputs(subject))
    def test(case: Case) -> None:
        last["case"] = case
        outcome.examples += 1
        outcome.values += case.x.numel()
        try:
            prop.test(subject, case)
        except Violation as v:
            v.case = v.case or case
            v.drawn = case  # what the replay file must hold (e.g. x with its upstream g)
            raise

    base = settings or profile_settings()
    test = Settings(base)(test)
    key = f"{prop.name}|{kernel_identity(subject.target)}|{subject.fmt.name}|"
    key += f"{subject.device}|{subject.policy.name}"
    _identify(test, key=key, derandomize=base.derandomize)
    start = time.perf_counter()
    finished = track_progress(outcome)
    token = CALL_TIMEOUT.set(call_timeout)
    try:
        with observing(sink), limited_threads(resolve_threads(work="properties")):
            test()
    except Violation as v:
        outcome.status = "failed"
        outcome.failure = failure_from(v, subject, prop, last.get("case"), replay_dir)
    except BaseExceptionGroup as group:  # several distinct failures, or an unreproducible one
        found = [e for e in _leaves(group) if isinstance(e, Violation)]
        if not found:
            outcome.status, outcome.reason = "error", f"{type(group).__name__}: {group}"[:2000]
        else:
            outcome.status = "failed"
            outcome.failure = failure_from(found[0], subject, prop, last.get("case"), replay_dir)
            if isinstance(group, FlakyFailure):
                outcome.failure.message = ("not reproducible: the same input passed when run "
                                           "again (nondeterministic kernel?); first failure: "
                                           + outcome.failure.message)
            elif len(found) > 1:
                outcome.failure.message += f" (and {len(found) - 1} other distinct failures)"
    except Exception as exc:  # Hypothesis health checks, our own bugs
        outcome.status = "error"
        outcome.reason = f"{type(exc).__name__}: {exc}".strip()[:2000]
    finally:
        CALL_TIMEOUT.reset(token)
        hung = _HUNG.pop(id(subject.target), None)
    if hung is not None:  # whatever Hypothesis made of the replays, the call timed out
        case = last.get("case")  # the input it was called on, to reproduce the timeout
        mark_timed_out(outcome, hung, limit=call_timeout, failure=Failure(
            message=hung, input_shape=list(case.x.shape) if case is not None else None,
            params=dict(case.params) if case is not None else {},
            replay=_save_replay(subject, prop, case, replay_dir) if case is not None else None))
    outcome.seconds = time.perf_counter() - start
    finished()
    return outcome


def kernel_identity(target: Target) -> str:
    """What a target's seeds and database keys derive from: the kernel it resolves to, not how
    its path was spelled ('k/bad.py:f' and './k/bad.py:f' are the same kernel)."""
    source = target.source
    if source is None or source.startswith("builtin:"):
        return source or target.name
    where, _, attr = source.rpartition(":")
    if where.endswith(".py"):
        where = Path(where).stem  # the module a file defines; the same on every machine
    return f"{where}:{attr}"


REPLAY_KEYS = {"property": str, "activation": str, "dtype": str, "device": str,
               "policy": str, "x": torch.Tensor, "params": dict, "layout": str}
# Keys that may be None: a callable checked through the Python API has no import path.
OPTIONAL_KEYS = {"target": str, "target_name": str, "root": str, "upstream": torch.Tensor,
                 "other": torch.Tensor, "knobs": dict}


def load_replay(path: str | Path) -> dict:
    """A replay file's case, read as data (no code is unpickled: `weights_only=True`) and
    validated; UsageError with one line for anything that is not a replay file actverify
    wrote, or that names something unknown here."""
    from actverify.errors import UsageError

    where = f"replay file {str(path)!r}"
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # garbage, empty, truncated, or a pickle that wants code
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise UsageError(f"{where} is not a replay file actverify wrote "
                         f"({type(exc).__name__}: {first})") from None
    if not isinstance(blob, dict):
        raise UsageError(f"{where} holds a {type(blob).__name__}, not a replay case")
    for key, kind in REPLAY_KEYS.items():
        if not isinstance(blob.get(key), kind):
            raise UsageError(f"{where} has no valid {key!r} (expected {kind.__name__}); it is "
                             "not a replay file actverify wrote")
    for key, kind in OPTIONAL_KEYS.items():
        if blob.get(key) is not None and not isinstance(blob[key], kind):
            raise UsageError(f"{where} has no valid {key!r} (expected {kind.__name__}); it is "
                             "not a replay file actverify wrote")
    if not all(isinstance(k, str) and isinstance(v, (bool, int, float, str))
               for k, v in blob["params"].items()):
        raise UsageError(f"{where} has parameters that are not plain numbers: "
                         f"{blob['params']!r}")
    if not all(isinstance(k, str) and (isinstance(v, (int, str)) or (
            isinstance(v, (tuple, list)) and all(isinstance(i, int) for i in v)))
               for k, v in (blob.get("knobs") or {}).items()):
        raise UsageError(f"{where} has knobs that are not plain values: {blob['knobs']!r}")
    return blob


def _replay_policy(name: str) -> Policy:
    base, _, kink = name.partition("+kink=")  # as Policy names a non-default kink convention
    return policy_named(base, kink=kink or None)


def main_replay(path: str, *, kernel: Callable | None = None, root: str | None = None) -> int:
    """Run the check of a saved case once; exit 1 if it still fails, 2 for a bad file.
    `kernel` replaces the target the file names; `root` is where its path is relative to
    (actverify/replays.py)."""
    from actverify.devices import resolve_device
    from actverify.errors import UsageError
    from actverify.properties import all_properties
    from actverify.replays import replay_command, replay_target

    blob = load_replay(path)
    props = all_properties()
    if blob["property"] not in props:
        raise UsageError(f"replay file {path!r} names the unknown property "
                         f"{blob['property']!r}; this actverify has {len(props)} others")
    fmt = float_format(blob["dtype"])
    if blob["x"].dtype != fmt.dtype:
        raise UsageError(f"replay file {path!r}: its input is {blob['x'].dtype}, not "
                         f"{blob['dtype']}")
    device = resolve_device(blob["device"])  # a CUDA case without CUDA: usage error
    policy = _replay_policy(blob["policy"])
    target = replay_target(blob, kernel=kernel, root=root)
    subject = Subject(target, fmt, device, policy)
    prop = props[blob["property"]]
    tensors = {k: blob[k].to(device) for k in ("upstream", "other") if blob.get(k) is not None}
    case = Case(blob["x"].to(device), blob["params"], blob["layout"],
                knobs=dict(blob.get("knobs") or {}), **tensors)
    try:
        prop.test(subject, case)
    except (Violation, TargetMisbehaved) as v:
        outcome = Outcome(prop.name, target.activation, target.name, subject.fmt.name,
                          subject.device, subject.policy.name, "failed",
                          failure=failure_from(v, subject, prop, case, None))
        outcome.failure.replay = replay_command(
            Path(path), loadable=kernel is None,
            kernel_name=getattr(kernel, "__name__", None) or target.name)
        print(format_failure(outcome))
        return 1
    print(f"{prop.name} holds for {target.name} on the saved case ({path})")
    return 0

