"""The properties, as named objects.  Importing this package registers all of them."""

from actverify.properties import (derivatives, devices, identities, scale,  # noqa: F401
                                  semantics, softmax, values)
from actverify.properties.base import (Property, Subject, TargetMisbehaved, Violation,
                                       all_properties)
from actverify.devices import is_second_device
from actverify.targets import Target


def properties_for(target: Target, fmt: str | None = None, device: str | None = None
                   ) -> list[Property]:
    """The properties that apply to `target` (on format `fmt` and `device`), in order."""
    return [p for p in all_properties().values() if p.applies(target)
            and (fmt is None or p.formats is None or fmt in p.formats)
            and (device is None or not p.off_cpu or is_second_device(device))]


__all__ = ["Property", "Subject", "Violation", "TargetMisbehaved", "all_properties",
           "properties_for"]
