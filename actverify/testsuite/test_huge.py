"""Opt-in: a tensor of more than 2^31 elements, crossing the 32-bit index boundary of GPU
grids.  Needs memory (4 GiB for float16 input and output each); run with
`pytest --pyargs actverify.testsuite.test_huge --actverify-huge --actverify-device cuda`.
The check is actverify/huge.py's, which the default tests run with a smaller boundary on the
stand-in second device."""

import pytest

from actverify.huge import memory_shortfall, past_boundary
from actverify.spec import get_spec
from actverify.targets import builtin_targets


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_elements_past_2_to_the_31(activation, actverify_huge_device):
    short = memory_shortfall(actverify_huge_device)
    if short:
        pytest.skip(short)
    canonical = builtin_targets(get_spec(activation))[0]
    assert past_boundary(canonical, actverify_huge_device) == []
