"""Property suite: dtype/shape/device, input untouched, independence, determinism, layouts, empty and 0-d, entry points agree.

The properties are stated in actverify/properties/semantics.py.
"""

from actverify.suite import run_case

GROUP = "semantics"


def test_property(actverify_case):
    run_case(actverify_case)
