"""Isolation mode: each (dtype, device) runs in a child process, so a kernel that crashes the
process or hangs inside C code becomes a finding instead of ending the run.

The child runs the properties one by one and reports each as it starts and as it ends; when
the child dies or stops answering, the property it was running is recorded as a crash or a
hang, and a fresh child carries on with the rest.  Results gathered so far are kept.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable

from actverify.runner import Failure, Outcome


def _child(conn, source: str, activation: str, dtype: str, device: str, policy: str,
           kink: str, profile: str, names: list[str], call_timeout: float | None) -> None:
    from actverify.accuracy import policy_named
    from actverify.dtypes import float_format
    from actverify.profiles import profile_settings
    from actverify.properties import Subject, all_properties
    from actverify.runner import run_property
    from actverify.targets import resolve_target

    target = resolve_target(source, activation)
    subject = Subject(target, float_format(dtype), device, policy_named(policy, kink=kink))
    settings = profile_settings(profile)
    props = all_properties()
    for name in names:
        conn.send(("start", name))
        conn.send(("done", run_property(props[name], subject, settings=settings,
                                        call_timeout=call_timeout)))
    conn.send(("finished", None))


def run_isolated(*, source: str, activation: str, target_name: str, dtype: str, device: str,
                 policy: str, kink: str, profile: str, names: list[str],
                 call_timeout: float | None, property_timeout: float,
                 on_outcome: Callable[[Outcome], None]) -> None:
    """Run `names` against the target in child processes; report every outcome."""
    ctx = mp.get_context("spawn")
    todo = list(names)
    while todo:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(child, source, activation, dtype, device, policy,
                                                kink, profile, todo, call_timeout), daemon=True)
        proc.start()
        child.close()
        current, verdict = None, None
        while True:
            if not parent.poll(property_timeout + 60 if current is None else property_timeout):
                verdict = f"hung: no result within {property_timeout:g} s (isolation mode)"
                proc.kill()
                break
            try:
                kind, payload = parent.recv()
            except EOFError:
                proc.join(5)
                verdict = f"crashed the process (exit code {proc.exitcode})"
                break
            if kind == "start":
                current = payload
            elif kind == "done":
                on_outcome(payload)
                todo.remove(payload.property)
                current = None
            else:
                break
        proc.join(5)
        if verdict is None:
            return
        if current is None:  # died before starting a property: nothing more can run
            current = todo[0]
        on_outcome(Outcome(current, activation, target_name, dtype, device, policy, "failed",
                           failure=Failure(message=f"the target {verdict} while checking "
                                                   f"{current}")))
        todo.remove(current)
