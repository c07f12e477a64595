"""Opt-in: a tensor of more than 2^31 elements, crossing the 32-bit index boundary of GPU
grids.  Needs memory (4 GiB for float16 input and output each); run with
`pytest --pyargs actverify.testsuite.test_huge --actverify-huge --actverify-device cuda`."""

import numpy as np
import pytest
import torch

from actverify.accuracy import compare, policy_named
from actverify.dtypes import float_format
from actverify.spec import get_spec

N = 2**31 + 4097


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_elements_past_2_to_the_31(activation, actverify_huge_device):
    spec, fmt = get_spec(activation), float_format("float16")
    x = torch.linspace(-8, 8, 4096, dtype=torch.float16, device=actverify_huge_device)
    x = x.repeat(N // 4096 + 1)[:N]
    y = spec.canonical.fn(x)
    # Windows around the 2^31 boundary and the tail, against the reference.
    for start in (0, 2**31 - 2048, N - 4096):
        xs, ys = x[start:start + 4096], y[start:start + 4096]
        ref = spec.reference(xs.cpu().double().numpy())
        cmp = compare(ys.cpu(), ref, fmt=fmt, bound=spec.bound(fmt).evaluate(ref, {}, fmt),
                      policy=policy_named("default"), zero_sign_specified=False)
        assert cmp.ok, f"wrong results near element {start + int(np.argmax(cmp.bad))}"
