"""Property suite: derivatives (gradient accuracy with random upstream gradients, linearity,
ranges, symmetry, kinks, second derivatives, gradcheck, entry points, no gradient for step).

The properties are stated in actverify/properties/derivatives.py.
"""

from actverify.suite import run_case

GROUP = "derivatives"


def test_property(actverify_case):
    run_case(actverify_case)
