"""Property suite: accuracy, range, limits at infinity, monotonicity, NaN propagation.

Parametrized in conftest.py over every applicable (property, target, dtype, device); the
properties themselves are stated in actverify/properties/values.py.
"""

from actverify.suite import check

GROUP = "values"


def test_property(subject_property):
    check(subject_property)
