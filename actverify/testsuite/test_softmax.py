"""Property suite: softmax: rows sum to one, shift invariance, order kept, masked and infinite rows.

The properties are stated in actverify/properties/softmax.py.
"""

from actverify.suite import run_case

GROUP = "softmax"


def test_property(actverify_case):
    run_case(actverify_case)
