"""The stand-in second device (`cpu:1`, docs/cuda.md): kernels run in a child process whose
ATen CPU kernels were chosen for another instruction-set capability.

A CPU-only machine has one device, so the code that runs only for a second one (cross-device
agreement, `actverify gpu-check`) would never run where the tests run.  The stand-in gives
it a second device with kernels of its own: PyTorch picks each CPU kernel's implementation
once per process from `ATEN_CPU_CAPABILITY` (scalar `default`, `avx2`, `avx512`), so a child
started with another capability computes with other code, as a GPU would.

Tensors "on" the stand-in are CPU tensors in this process.  `remote` turns a kernel into a
callable that sends its input to the child, runs the kernel there and brings the result (and
the input, if the kernel wrote into it) back, with autograd: the backward and the double
backward also run in the child.  The child finds the kernel by the reference it was loaded
from (`Target.source`, or PyTorch's entry point), so only importable kernels can run on it.
One child per process serves every call; it is started on first use.
"""

from __future__ import annotations

import atexit
import io
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import torch

from actverify.devices import STAND_IN, STAND_IN_CAPABILITY

if TYPE_CHECKING:
    from actverify.targets import Target


# Set in the child's environment: a kernel can tell it runs "on" the stand-in (planted
# device-dependent bugs in the tests do).
CHILD_FLAG = "ACTVERIFY_ON_STAND_IN"


def on_stand_in() -> bool:
    """Whether this process is the stand-in device's child."""
    return os.environ.get(CHILD_FLAG) == "1"


class StandInError(RuntimeError):
    """The kernel raised in the child (the message names the original exception), or the
    child could not run it."""


# ------------------------------------------------------------------------------ wire


def _send(stream: BinaryIO, message: dict) -> None:
    buf = io.BytesIO()
    torch.save(message, buf)
    data = buf.getvalue()
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream: BinaryIO) -> dict | None:
    head = stream.read(8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    data = stream.read(n)
    if len(data) < n:
        return None
    # Plain containers of tensors and numbers only: nothing on the wire can run code.
    return torch.load(io.BytesIO(data), weights_only=True)


# ----------------------------------------------------------------------------- child


def _kernel(ref: str, activation: str, cache: dict) -> Callable:
    if (ref, activation) not in cache:
        from actverify.targets import resolve_target

        cache[ref, activation] = resolve_target(ref, activation).fn
    return cache[ref, activation]


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    from actverify.dtypes import float_format

    fmt = float_format(a.dtype)
    return bool(torch.equal(fmt.bits_of(a.contiguous()), fmt.bits_of(b.contiguous())))


def _run(fn: Callable, x: torch.Tensor, params: dict, *, grad: bool, private: bool):
    """fn on x as the parent would call it: on a private copy in x's layout for in-place
    kernels, and through autograd when the caller differentiates."""
    leaf = x.detach().requires_grad_(grad) if grad else x
    t = leaf
    if private and grad:  # an in-place kernel must not write into a leaf that needs grad
        t = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype).copy_(leaf)
    return leaf, t, fn(t, **params)


def _handle(req: dict, cache: dict) -> dict:
    op = req["op"]
    if op == "hello":
        return {"capability": torch.backends.cpu.get_cpu_capability().lower()}
    fn = _kernel(req["ref"], req["activation"], cache)
    x, params = req["x"], req["params"]
    if op == "call":
        before = x.clone()
        leaf, t, y = _run(fn, x, params, grad=req["grad"], private=req["private"])
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"the kernel returned {type(y).__name__}, not a tensor")
        # Under autograd the parent hands back a new tensor anyway (see _Call).
        returned_input = not req["grad"] and (
            y is t or (y.numel() > 0 and y.data_ptr() == t.data_ptr()
                       and y.shape == t.shape and y.stride() == t.stride()))
        written = not req["grad"] and not _same_bits(t, before)
        return {"y": None if returned_input else y.detach(), "returned_input": returned_input,
                "differentiable": bool(y.requires_grad), "x_after": t.detach() if written
                else None}
    if op == "vjp":
        leaf, _, y = _run(fn, x, params, grad=True, private=req["private"])
        (gx,) = torch.autograd.grad(y, leaf, grad_outputs=req["gy"])
        return {"gx": gx}
    if op == "vjp2":  # the backward's own backward, for double backward and gradgradcheck
        gy = req["gy"].detach().requires_grad_(True)
        leaf, _, y = _run(fn, x, params, grad=True, private=req["private"])
        (gx,) = torch.autograd.grad(y, leaf, grad_outputs=gy, create_graph=True)
        gxx, ggy = torch.autograd.grad(gx, (leaf, gy), grad_outputs=req["ggx"],
                                       allow_unused=True)
        return {"gxx": torch.zeros_like(x) if gxx is None else gxx,
                "ggy": torch.zeros_like(gy) if ggy is None else ggy}
    raise ValueError(f"unknown request {op!r}")


def serve() -> None:
    """The child's loop: requests on stdin, answers on the original stdout (a kernel that
    prints writes to stderr instead, so it cannot corrupt the answers)."""
    from actverify.threads import resolve

    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    torch.set_num_threads(resolve(work="properties"))  # OMP_NUM_THREADS, from the parent
    cache: dict = {}
    while (req := _receive(sys.stdin.buffer)) is not None:
        try:
            answer = {"ok": True, **_handle(req, cache)}
        except Exception as exc:  # the kernel's error travels back to the caller
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        _send(answers, answer)


# ---------------------------------------------------------------------------- parent


class _Child:
    """One child process with the stand-in's capability, serving requests one at a time."""

    def __init__(self, capability: str) -> None:
        self.capability = capability
        from actverify.threads import ENV_VAR, resolve

        # The parent's thread count (its command's --threads, else property checking's one
        # thread; `actverify isa`'s default is every core: its passes are 2^20 elements).
        env = {**os.environ, "ATEN_CPU_CAPABILITY": capability,
               ENV_VAR: str(resolve(work="properties")), CHILD_FLAG: "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "actverify.standin"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def request(self, **req: Any) -> dict:
        try:
            _send(self.proc.stdin, req)
            answer = _receive(self.proc.stdout)
        except BaseException:  # a time limit or ^C mid-request: the child is out of step
            self.close()
            raise
        if answer is None:
            self.close()
            raise StandInError(f"the stand-in device's process ended (exit status "
                               f"{self.proc.poll()}) while running a kernel")
        if not answer.pop("ok"):
            raise StandInError(answer["error"])
        return answer

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


_CHILDREN: dict[str, _Child] = {}


def child(capability: str = STAND_IN_CAPABILITY) -> _Child:
    """The running child for `capability`, started (or restarted after a crash) on demand."""
    found = _CHILDREN.get(capability)
    if found is None or not found.alive():
        found = _CHILDREN[capability] = _Child(capability)
    return found


@atexit.register
def _close_all() -> None:
    for c in _CHILDREN.values():
        c.close()


def child_capability() -> str:
    """The capability the stand-in's kernels actually run under (asked of the child)."""
    return child().request(op="hello")["capability"]


def _reference(fn: Callable, target: Target) -> tuple[str, str]:
    """How the child finds `fn`: the target's source, or PyTorch's entry point it is."""
    from actverify.spec import registry

    if fn is target.fn:
        if target.source is None:
            raise StandInError(f"{target.name} cannot run on the stand-in device {STAND_IN}: "
                               "it has no reference the child process can import it from "
                               "(load it as 'module:attr' or 'file.py:attr')")
        return target.source, target.activation
    for spec in registry().values():
        for ep in spec.entry_points:
            if fn is ep.fn:
                return f"builtin:{spec.name}:{ep.name}", spec.name
    raise StandInError(f"{fn!r} cannot run on the stand-in device {STAND_IN}: only targets "
                       "and PyTorch's entry points can")


def _call_plain(how: tuple, x: torch.Tensor, *, grad: bool) -> tuple[torch.Tensor, bool]:
    ref, activation, params, private = how
    got = child().request(op="call", ref=ref, activation=activation, x=x.detach(),
                          params=params, grad=grad, private=private)
    if got["x_after"] is not None:  # the kernel wrote into its input: so does the "device"
        with torch.no_grad():
            x.copy_(got["x_after"])
    return (x if got["returned_input"] else got["y"]), got["differentiable"]


class _Call(torch.autograd.Function):
    """The kernel's forward in the child, differentiable here.  Under autograd an in-place
    kernel's result is returned as a new tensor: its backward needs the input unchanged."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, how: tuple) -> torch.Tensor:
        y, differentiable = _call_plain(how, x, grad=True)
        ctx.save_for_backward(x)
        ctx.how = how
        if not differentiable:
            ctx.mark_non_differentiable(y)
        return y

    @staticmethod
    def backward(ctx, gy: torch.Tensor):
        (x,) = ctx.saved_tensors
        return _Vjp.apply(x, gy, ctx.how), None


class _Vjp(torch.autograd.Function):
    """The kernel's backward in the child; its own backward (double backward) too."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, gy: torch.Tensor, how: tuple) -> torch.Tensor:
        ref, activation, params, private = how
        ctx.save_for_backward(x, gy)
        ctx.how = how
        return child().request(op="vjp", ref=ref, activation=activation, x=x.detach(),
                               gy=gy.detach(), params=params, private=private)["gx"]

    @staticmethod
    def backward(ctx, ggx: torch.Tensor):
        x, gy = ctx.saved_tensors
        ref, activation, params, private = ctx.how
        got = child().request(op="vjp2", ref=ref, activation=activation, x=x.detach(),
                              gy=gy.detach(), ggx=ggx.detach(), params=params, private=private)
        return got["gxx"], got["ggy"], None


def remote(fn: Callable, *, target: Target, inplace: bool) -> Callable[..., torch.Tensor]:
    """`fn` (the target's kernel or a PyTorch entry point) as a kernel of the stand-in device:
    same signature, run in the child, differentiable here."""
    ref, activation = _reference(fn, target)

    def on_stand_in(x: torch.Tensor, **params: Any) -> torch.Tensor:
        how = (ref, activation, dict(params), inplace)
        if torch.is_grad_enabled() and x.requires_grad:
            return _Call.apply(x, how)
        return _call_plain(how, x, grad=False)[0]

    return on_stand_in


if __name__ == "__main__":
    serve()
