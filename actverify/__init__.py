"""actverify: property-based verification of activation functions and their derivatives.

    import actverify

    report = actverify.check(my_sigmoid, activation="sigmoid")       # docs/check.md
    test_my_sigmoid = actverify.property_tests(my_sigmoid, activation="sigmoid")  # pytest
    actverify.assert_close(my_sigmoid(x), x, activation="sigmoid")   # one ULP-based assert
    actverify.replay(".actverify/replay/<file>.pt", kernel=my_sigmoid)  # one saved failure

The public names are loaded on first use: the pytest plugin (actverify.plugin) imports this
package in every pytest session of an environment where actverify is installed, and must not
import torch there.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

_PUBLIC = {  # name -> the module that defines it
    "check": "actverify.check",
    "declare": "actverify.targets",
    "Target": "actverify.targets",
    "property_tests": "actverify.testing",
    "assert_close": "actverify.testing",
    "replay": "actverify.replays",
}

__all__ = ["check", "declare", "Target", "property_tests", "assert_close", "replay",
           "__version__"]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'actverify' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """`actverify.check` is the function, also once the submodule actverify/check.py has been
    imported (the import system then sets the package's attribute `check` to the submodule)."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _PUBLIC.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
