"""Property suite: cross-device agreement (results and gradients on a second device equal
PyTorch's CPU results).  Without an accelerator these run on the stand-in second device
`cpu:1` (docs/cuda.md).

The properties are stated in actverify/properties/devices.py.
"""

from actverify.suite import run_case

GROUP = "devices"


def test_property(actverify_case):
    run_case(actverify_case)
