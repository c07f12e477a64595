"""The machinery of `actverify fuzz` (the command itself: actverify/fuzz.py).

* `shard`: the pytest options that split, order, repeat in rounds and cap a run
  (`--actverify-shard`, `--actverify-order`, `--actverify-rounds`, `--actverify-max-examples`);
  part of actverify's pytest plugin.
* `records`: what the pytest processes of a fuzz session write for the orchestrator, as JSON
  lines (tests collected, each test's result, each property's examples and values); also part
  of the plugin.
* `orchestrator`: `fuzz()`, which runs rounds of the suite for a time budget and reads those
  records (never pytest's console output).
"""
