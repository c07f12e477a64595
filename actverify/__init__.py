"""actverify: property-based verification of activation functions and their derivatives."""

from actverify.check import check
from actverify.targets import Target, declare

__all__ = ["check", "declare", "Target"]
__version__ = "0.1.0"
