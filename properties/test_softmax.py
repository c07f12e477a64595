"""Property suite: softmax: rows sum to one, shift invariance, order kept, masked and infinite rows.

Parametrized in conftest.py over every applicable (property, target, dtype, device); the
properties themselves are stated in actverify/properties/softmax.py.
"""

from actverify.suite import check

GROUP = "softmax"


def test_property(subject_property):
    check(subject_property)
