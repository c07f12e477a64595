"""This project's property suite: actverify.testsuite.test_identities, run against PyTorch's own
kernels (or the kernels --actverify-target names).  See actverify/testsuite/."""

from actverify.testsuite.test_identities import GROUP, test_property  # noqa: F401
