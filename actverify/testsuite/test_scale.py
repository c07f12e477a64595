"""Property suite: the scale regimes (tensors of 2^23 to 2^25 elements, more than 65,535 rows
along the first and middle dimensions, rows longer than 2^16), for every target.

About a second per subject: marked slow, so this project's default run leaves the whole
matrix to `-m slow` (tests/test_regimes.py runs PyTorch's functional forms and the planted
bugs there); `actverify check` runs the regimes on every kernel.  The properties themselves
are stated in actverify/properties/scale.py.
"""

import pytest

from actverify.suite import run_case

GROUP = "scale"
pytestmark = pytest.mark.slow


def test_property(actverify_case):
    run_case(actverify_case)
