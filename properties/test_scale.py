"""This project's property suite: actverify.testsuite.test_scale, run against PyTorch's own
kernels (or the kernels --actverify-target names).  See actverify/testsuite/."""

from actverify.testsuite.test_scale import GROUP, pytestmark, test_property  # noqa: F401
