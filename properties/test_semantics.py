"""Property suite: dtype/shape/device, input untouched, independence, determinism, layouts, empty and 0-d, entry points agree.

Parametrized in conftest.py over every applicable (property, target, dtype, device); the
properties themselves are stated in actverify/properties/semantics.py.
"""

from actverify.suite import check

GROUP = "semantics"


def test_property(subject_property):
    check(subject_property)
