"""This project's property suite: actverify.testsuite.test_devices, run against PyTorch's own
kernels (or the kernels --actverify-target names).  See actverify/testsuite/."""

from actverify.testsuite.test_devices import GROUP, test_property  # noqa: F401
