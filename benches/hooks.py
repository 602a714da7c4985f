"""gunicorn config (`-c benches/hooks.py`) for two benchmarks in benches/bench.py.

`when_ready` runs in gunicorn's master right after it created its listening socket
(sock.create_sockets, then the "Listening at" log line and its own READY=1):

- `ready`: it appends CLOCK_MONOTONIC (ns) to $BENCH_LISTEN_FILE: the moment the
  listener exists, stamped by gunicorn itself (at most a log line after listen()).
- `signal`: gunicorn's own SIGHUP handler only queues the signal, and its
  "Handling signal: hup" log line comes later with 1 ms resolution at best. So this
  wraps that handler: the wrapper appends CLOCK_MONOTONIC (ns) to $BENCH_HUP_FILE,
  then calls gunicorn's handler unchanged.

CLOCK_MONOTONIC is one clock for every process on the host, so the bench subtracts
its own timestamps (when it started the process, when it sent the signal).
"""

import os
import signal
import time


def _stamp(fd):
    os.write(fd, b"%d\n" % time.monotonic_ns())


def _open(path):
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def when_ready(server):
    listen_file = os.environ.get("BENCH_LISTEN_FILE")
    if listen_file:
        fd = _open(listen_file)
        _stamp(fd)
        os.close(fd)
    hup_file = os.environ.get("BENCH_HUP_FILE")
    if hup_file:
        fd = _open(hup_file)
        original = signal.getsignal(signal.SIGHUP)

        def stamped(sig, frame):
            _stamp(fd)
            original(sig, frame)

        signal.signal(signal.SIGHUP, stamped)
