"""The device paths without a GPU: the stand-in second device `cpu:1` (docs/cuda.md) runs
kernels in a child process under another ATen CPU capability, and everything that runs only
off the CPU (cross-device properties, `actverify gpu-check`) runs on it here.

One child process serves every test of a pytest worker (started on first use, ~3 s).
The planted cross-device bugs are caught on the stand-in in tests/test_planted_bugs.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from actverify.accuracy import DEFAULT
from actverify.cli import main
from actverify.devices import (STAND_IN, current_capability, resolve_device, second_device,
                               torch_device)
from actverify.dtypes import float_format
from actverify.errors import UsageError
from actverify.gpucheck import gpu_check
from actverify.properties import Subject, TargetMisbehaved, all_properties
from actverify.runner import run_property
from actverify.standin import child_capability, remote
from actverify.suite import suite_cases
from actverify.targets import builtin_targets, resolve_target, target_from_callable
from actverify.spec import get_spec


def entry_point(activation: str, name: str):
    return next(t for t in builtin_targets(get_spec(activation)) if t.name == name)


def test_the_stand_in_is_a_device_of_its_own_name() -> None:
    assert resolve_device(" CPU:1 ") == STAND_IN and torch_device(STAND_IN) == "cpu"
    assert resolve_device("cpu:0") == "cpu"
    with pytest.raises(UsageError, match="there is no device 'cpu:2'"):
        resolve_device("cpu:2")
    assert second_device(["cpu"]) == STAND_IN
    assert second_device(["cpu", "cuda"]) is None and second_device([STAND_IN]) is None


def test_kernels_on_the_stand_in_run_under_another_cpu_capability() -> None:
    assert child_capability() == "default"
    if current_capability() == "default":
        pytest.skip("this process runs the scalar kernels too: nothing differs")
    # float32 sigmoid's scalar and vector bodies round differently (docs/findings.md)
    x = torch.linspace(-20, 20, 4001)
    here = torch.sigmoid(x)
    there = remote(torch.sigmoid, target=entry_point("sigmoid", "torch.sigmoid"),
                   inplace=False)(x)
    assert there.dtype == here.dtype and not torch.equal(there, here)
    assert torch.allclose(there, here, rtol=2**-21, atol=0)  # a few ulps apart


def test_forward_backward_double_backward_and_in_place_cross_over() -> None:
    sig = entry_point("sigmoid", "torch.sigmoid")
    on_stand_in = remote(sig.fn, target=sig, inplace=False)
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(on_stand_in, (x,))
    assert torch.autograd.gradgradcheck(on_stand_in, (x,))
    relu_ = entry_point("relu", "torch.relu_")
    t = torch.tensor([-1.0, 2.0, -0.0])
    y = remote(relu_.fn, target=relu_, inplace=True)(t)
    assert y is t and t.tolist() == [0.0, 2.0, -0.0]


def test_a_kernel_error_on_the_stand_in_is_the_kernel_misbehaving() -> None:
    target = resolve_target("tests.planted:tanh_returns_list", "tanh")
    subject = Subject(target, float_format("float32"), STAND_IN, DEFAULT)
    with pytest.raises(TargetMisbehaved, match="not a tensor"):
        subject.call(torch.zeros(3))
    nameless = target_from_callable(torch.tanh, "tanh", name="a lambda")
    outcome = run_property(all_properties()["cross_device"],
                           Subject(nameless, float_format("float32"), STAND_IN, DEFAULT))
    assert outcome.status == "error" and "no reference the child" in outcome.reason


def test_the_suite_runs_cross_device_properties_on_the_stand_in_without_an_accelerator(
        ) -> None:
    cases = suite_cases(devices=["cpu"], activations=["relu"], dtypes=["float16"])
    on_stand_in = sorted(c.id for c in cases if c.subject.device == STAND_IN)
    assert on_stand_in == ["cross_device-relu-F.relu-float16-cpu:1",
                           "cross_device_gradient-relu-F.relu-float16-cpu:1"]
    assert all(c.group == "devices" for c in cases if c.subject.device == STAND_IN)


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_gpu_check_flow_runs_on_the_stand_in(tmp_path: Path, workers: int) -> None:
    """Every step of `actverify gpu-check` (suite with the cross-device properties, 16-bit
    sweeps, Triton and CUDA-extension examples, one report) on the stand-in, narrowed to two
    activations, one dtype and each activation's canonical form; with 2 workers the suite
    runs in worker processes as on a GPU machine (slow: each starts torch and a stand-in).
    The CUDA extension cannot run there: reported as not run, so the run does not conform
    (exit 1) though everything that ran held."""
    examples = [("examples/triton_kernels.py:relu", "relu"),
                ("examples/cuda_extension.py:relu", "relu")]
    status = gpu_check(tmp_path, device=STAND_IN, activations=["relu", "step"],
                       dtypes=["float16"], examples=examples, workers=workers,
                       entry_points=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert status == 1, summary
    assert [summary[s]["status"] for s in ("suite", "sweeps", "examples")] == ["ok"] * 3
    assert summary["suite"]["ok"] and summary["suite"]["cross_device"]["passed"] == 3
    assert [r["activation"] for r in summary["suite"]["rows"]] == ["relu", "step"]
    assert summary["sweeps"]["ok"]
    assert "F.relu [relu] float16: ok" in summary["sweeps"]["results"][0]
    checked = summary["examples"]["checked"]
    assert checked["examples/triton_kernels.py:relu"]["verdict"] == "conforms"
    assert checked["examples/cuda_extension.py:relu"]["verdict"] == "not run"
    assert (tmp_path / "sweep" / "sweep.md").is_file() and (tmp_path / "suite.json").is_file()
    assert "does not conform" in (tmp_path / "summary.md").read_text()


def test_gpu_check_needs_a_second_device(tmp_path: Path, capsys) -> None:
    assert main(["gpu-check", str(tmp_path), "--device", "cpu"]) == 2
    assert "gpu-check needs a second device" in capsys.readouterr().err
    if torch.cuda.is_available():
        return
    assert main(["gpu-check", str(tmp_path)]) == 0
    assert "nothing was checked on CUDA" in (tmp_path / "summary.md").read_text()


SMALL_BOUNDARY = 2**16


def wraps_past_the_boundary(x: torch.Tensor) -> torch.Tensor:
    """Planted: a kernel whose index wraps at the boundary (a 32-bit index on a GPU, here
    2^16): elements past it get the results of the first ones again."""
    y = torch.sigmoid(x)
    y[SMALL_BOUNDARY:] = y[:x.numel() - SMALL_BOUNDARY].clone()
    return y


def test_the_huge_case_runs_its_plan_on_the_stand_in() -> None:
    """The >2^31-element check, with a boundary of 2^16: PyTorch's sigmoid passes on the
    stand-in; a kernel whose index wraps at the boundary is caught in the straddling window."""
    from actverify.huge import past_boundary, windows

    assert windows(2**31 + 4097) == (0, 2**31 - 2048, 2**31 + 1)
    sigmoid = builtin_targets(get_spec("sigmoid"))[0]
    assert past_boundary(sigmoid, STAND_IN, boundary=SMALL_BOUNDARY) == []
    wrapping = resolve_target("tests.test_devices:wraps_past_the_boundary", "sigmoid")
    problems = past_boundary(wrapping, STAND_IN, boundary=SMALL_BOUNDARY)
    assert len(problems) == 2 and "near element 6" in problems[0], problems


def relu_positive_zero(x: torch.Tensor) -> torch.Tensor:
    """relu(-0.0) = +0.0, as Triton's tl.maximum and inductor give it."""
    return torch.relu(x) + 0.0


@pytest.mark.parametrize("policy, holds", [("default", True), ("strict", False)])
def test_cross_device_leaves_relus_zero_sign_free_unless_strict(policy: str, holds: bool
                                                                ) -> None:
    """Found by running gpu-check's flow on the stand-in: the Triton relu example returns
    +0.0 for -0.0, which the relu spec allows (F8); bit-for-bit agreement across devices
    counts the zero's sign only where the spec or the policy says it does."""
    from actverify.accuracy import policy_named
    from actverify.properties import Violation
    from actverify.strategies import Case

    target = resolve_target("tests.test_devices:relu_positive_zero", "relu")
    subject = Subject(target, float_format("float32"), STAND_IN, policy_named(policy))
    case = Case(torch.tensor([-0.0, 0.0, -1.0, 2.0]))
    if holds:
        all_properties()["cross_device"].test(subject, case)
    else:
        with pytest.raises(Violation, match="differs from the CPU's"):
            all_properties()["cross_device"].test(subject, case)
