"""Property suite: accuracy, range, limits at infinity, monotonicity, NaN propagation.

The properties are stated in actverify/properties/values.py.
"""

from actverify.suite import run_case

GROUP = "values"


def test_property(actverify_case):
    run_case(actverify_case)
