"""Property suite: the scale regimes (tensors of 2^23 to 2^25 elements, more than 65,535 rows
along the first and middle dimensions, rows longer than 2^16), for every builtin target.

About a second per subject, so the whole matrix is left to `-m slow`; tests/test_scale.py
runs PyTorch's functional forms and the planted bugs in the default run.  The properties
themselves are stated in actverify/properties/scale.py.
"""

import pytest

from actverify.suite import check

GROUP = "scale"
pytestmark = pytest.mark.slow


def test_property(subject_property):
    check(subject_property)
