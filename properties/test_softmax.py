"""Property suite: softmax: rows sum to one, shift invariance, order kept, masked and infinite rows.

Parametrized in conftest.py over every applicable (property, target, dtype, device); the
properties themselves are stated in actverify/properties/softmax.py.
"""

from actverify.runner import format_failure, run_property

GROUP = "softmax"


def test_property(subject_property):
    outcome = run_property(subject_property.prop, subject_property.subject)
    assert outcome.status != "error", outcome.reason
    assert outcome.status == "passed", format_failure(outcome)
