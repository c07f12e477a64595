"""The verdicts a sweep gives come from the property suite's own functions, imported here and
nowhere else in the sweep, so that a sweep and a property never disagree about what counts as
wrong (and so that moving those functions changes one import)."""

from actverify.properties.derivatives import (at_kink_within_subdifferential, gradient,
                                              own_output_error, tolerance)
from actverify.properties.values import judge

__all__ = ["at_kink_within_subdifferential", "gradient", "judge", "own_output_error",
           "tolerance"]
