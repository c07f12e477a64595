"""Property suite: symmetry, tanh = 2 sigmoid(2x) - 1, relu(x) - relu(-x) = x, leaky ReLU's two sides.

Parametrized in conftest.py over every applicable (property, target, dtype, device); the
properties themselves are stated in actverify/properties/identities.py.
"""

from actverify.suite import check

GROUP = "identities"


def test_property(subject_property):
    check(subject_property)
