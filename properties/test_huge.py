"""This project's property suite: actverify.testsuite.test_huge, run against PyTorch's own
kernels (or the kernels --actverify-target names).  See actverify/testsuite/."""

from actverify.testsuite.test_huge import test_elements_past_2_to_the_31  # noqa: F401
