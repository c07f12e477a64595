"""The properties, as named objects.  Importing this package registers all of them."""

from actverify.properties import identities, semantics, softmax, values  # noqa: F401
from actverify.properties.base import (Property, Subject, TargetMisbehaved, Violation,
                                       all_properties)
from actverify.targets import Target


def properties_for(target: Target) -> list[Property]:
    """The properties that apply to `target`, in a stable order."""
    return [p for p in all_properties().values() if p.applies(target)]


__all__ = ["Property", "Subject", "Violation", "TargetMisbehaved", "all_properties",
           "properties_for"]
