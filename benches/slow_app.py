"""examples/hello.py's app behind an import that takes $BENCH_IMPORT_SECONDS (default 1):
a Django-sized start, so that the launcher is still verifying (its HTTP probe waiting
for the worker) when the bench sends it a signal; the same HUP sent to gunicorn's master
directly and through tini is the comparison."""

import os
import time

from hello import app  # noqa: F401  (examples/ is the working directory)

time.sleep(float(os.environ.get("BENCH_IMPORT_SECONDS", "1")))
