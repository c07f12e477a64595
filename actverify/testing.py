"""actverify inside a user's own test suite (docs/usage.md).

    import actverify
    from mykernels import fast_sigmoid

    # one pytest test per (property, dtype, device): test_fast_sigmoid[accuracy-float32-cpu]
    test_fast_sigmoid = actverify.property_tests(fast_sigmoid, activation="sigmoid")

    def test_my_layer():
        x = torch.randn(1000, dtype=torch.bfloat16)
        actverify.assert_close(fast_sigmoid(x), x, activation="sigmoid")

`property_tests` runs the activation's full property set, forward and backward, through
actverify's pytest plugin: `-k`, xdist, the Hypothesis example database and the
--actverify-* options work as for the property suite; what the kernel declares it does not
support (actverify.declare) and devices that are absent are skipped, never errors; a failure
shows the evidence and the command that replays it.  `assert_close` judges one result with the
accuracy model (actverify/accuracy.py), as `torch.testing.assert_close` does with tolerances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from actverify.accuracy import policy_named
from actverify.devices import KNOWN_DEVICES, available_devices
from actverify.dtypes import DTYPE_NAMES, float_format
from actverify.errors import UsageError
from actverify.targets import Target, as_target


def _kernel_target(kernel: Callable | str | Target, activation: str | None) -> Target:
    """A target that can be loaded again by a replay: callables get their import path."""
    from actverify.replays import reference_of

    source = None if isinstance(kernel, (str, Target)) else reference_of(kernel, Path.cwd())
    return as_target(kernel, activation, caller="property_tests", source=source)


def property_tests(kernel: Callable | str | Target, *, activation: str | None = None,
                   dtypes: Iterable[str | torch.dtype] | None = None,
                   devices: Iterable[str] | None = None,
                   policy: str | None = None) -> Callable:
    """A pytest test function that actverify's plugin expands into one test per (property,
    dtype, device) of `kernel`; assign it to a `test_*` name in a test module.

    `kernel`: a callable with the torch.nn.functional signature of `activation`, or
    'package.module:attr' / 'path/file.py:attr'.  `dtypes`: names or torch dtypes (default
    all four).  `devices`: default every device present, plus cuda (skipped where absent).
    `policy`: 'default' or 'strict' (default: --actverify-policy).
    """
    from actverify.suite import KernelTests, run_case

    target = _kernel_target(kernel, activation)
    chosen_dtypes = tuple(dict.fromkeys(float_format(d).name for d in dtypes)) if dtypes \
        else DTYPE_NAMES
    if devices is None:
        chosen_devices = tuple(dict.fromkeys([*available_devices(), "cuda"]))
    else:
        chosen_devices = tuple(dict.fromkeys(_device_name(d) for d in devices))
    if policy is not None:
        policy_named(policy)  # a typo fails here, at import of the test module

    def test(actverify_case) -> None:
        run_case(actverify_case)

    test.actverify_kernel = KernelTests(target, chosen_dtypes, chosen_devices, policy)
    test.__name__ = test.__qualname__ = f"test_{target.activation}_properties"
    test.__doc__ = f"actverify's properties of {target.activation} on {target.name}"
    return test


def _device_name(device: str) -> str:
    """A device name checked for spelling only: an absent device is listed, and skipped."""
    name = device.strip().lower() if isinstance(device, str) else device
    if not isinstance(name, str) or name.split(":", 1)[0] not in KNOWN_DEVICES:
        raise UsageError(f"unknown device {device!r}; use one of {', '.join(KNOWN_DEVICES)}")
    return name


def assert_close(actual: torch.Tensor, input: torch.Tensor, *, activation: str,
                 params: dict | None = None, policy: str = "default",
                 msg: str | None = None) -> None:
    """Assert that `actual` is `activation(input)` within the activation's accuracy bound in
    ULPs of actual's dtype, measured against the higher-precision reference; on failure the
    AssertionError names the worst element: input, expected and actual values with their bits,
    the ULP error and the bound (docs/accuracy.md).  `params`: the activation's parameters
    (`{"dim": -1}` for softmax, `{"negative_slope": 0.2}`); `policy`: 'default' or 'strict'.
    """
    from actverify.properties import Subject, Violation
    from actverify.judgement import judge
    from actverify.runner import Failure, Outcome, _bits, format_failure
    from actverify.spec import get_spec
    from actverify.strategies import Case
    from actverify.targets import builtin_targets

    for name, t in (("actual", actual), ("input", input)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
    if actual.shape != input.shape or actual.dtype != input.dtype:
        raise AssertionError(f"actual has shape {tuple(actual.shape)} and dtype {actual.dtype}; "
                             f"the input {tuple(input.shape)} and {input.dtype}")
    spec = get_spec(activation)
    fmt = float_format(actual.dtype)
    subject = Subject(builtin_targets(spec)[0], fmt, str(actual.device), policy_named(policy))
    case = Case(input.detach(), {**spec.default_params(), **(params or {})})
    judged = judge(subject, case.x, actual.detach(), case.params)
    cmp = judged.comparison
    try:
        subject.fail_where(judged.bad, "result differs from the true value", x=case.x,
                           actual=actual.detach(), expected=judged.reference, error=cmp.error,
                           case=case, bound=float(np.max(cmp.bound)) if cmp.bound.size else None)
    except Violation as v:
        failure = Failure(message=v.message, x=v.x, x_bits=_bits(fmt, v.x),
                          index=list(v.index or []) or None, expected=v.expected,
                          expected_bits=_bits(fmt, v.expected), actual=v.actual,
                          actual_bits=_bits(fmt, v.actual), ulp_error=v.ulp_error,
                          input_shape=list(input.shape), layout="as given", params=case.params,
                          details=v.details)
        outcome = Outcome("assert_close", spec.name, "the result", fmt.name, str(actual.device),
                          subject.policy.name, "failed", failure=failure)
        raise AssertionError((f"{msg}\n" if msg else "") + format_failure(outcome)) from None


__all__ = ["property_tests", "assert_close"]
