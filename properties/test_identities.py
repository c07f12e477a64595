"""Property suite: symmetry, tanh = 2 sigmoid(2x) - 1, relu(x) - relu(-x) = x, leaky ReLU's two sides.

Parametrized in conftest.py over every applicable (property, target, dtype, device); the
properties themselves are stated in actverify/properties/identities.py.
"""

from actverify.runner import format_failure, run_property

GROUP = "identities"


def test_property(subject_property):
    outcome = run_property(subject_property.prop, subject_property.subject)
    assert outcome.status != "error", outcome.reason
    assert outcome.status == "passed", format_failure(outcome)
