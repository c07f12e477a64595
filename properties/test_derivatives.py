"""Property suite: derivatives (gradient accuracy with random upstream gradients, linearity,
ranges, symmetry, kinks, second derivatives, gradcheck, entry points, no gradient for step).

Parametrized in conftest.py; the properties are stated in actverify/properties/derivatives.py.
"""

from actverify.suite import check

GROUP = "derivatives"


def test_property(subject_property):
    check(subject_property)
