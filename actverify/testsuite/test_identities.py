"""Property suite: symmetry, tanh = 2 sigmoid(2x) - 1, relu(x) - relu(-x) = x, leaky ReLU's two sides.

The properties are stated in actverify/properties/identities.py.
"""

from actverify.suite import run_case

GROUP = "identities"


def test_property(actverify_case):
    run_case(actverify_case)
