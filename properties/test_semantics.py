"""Property suite: dtype/shape/device, input untouched, independence, determinism, layouts, empty and 0-d, entry points agree.

Parametrized in conftest.py over every applicable (property, target, dtype, device); the
properties themselves are stated in actverify/properties/semantics.py.
"""

from actverify.runner import format_failure, run_property

GROUP = "semantics"


def test_property(subject_property):
    outcome = run_property(subject_property.prop, subject_property.subject)
    assert outcome.status != "error", outcome.reason
    assert outcome.status == "passed", format_failure(outcome)
