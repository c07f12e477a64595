"""Property suite: cross-device agreement (results and gradients on a second device equal
PyTorch's CPU results).  Without an accelerator these run on the stand-in second device
`cpu:1` (docs/cuda.md); the properties are stated in actverify/properties/devices.py.
"""

from actverify.suite import check

GROUP = "devices"


def test_property(subject_property):
    check(subject_property)
