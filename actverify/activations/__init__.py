"""One module per activation, each defining `SPEC`; `actverify.spec.registry()` finds them."""
