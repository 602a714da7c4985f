#!/usr/bin/env python3
"""Whole-process benchmarks of gunicorn-launcher against the tools it replaces.

    benches/bench.py check     # `check` vs lsof / ss -p / ss, 20,000 TCP sockets
    benches/bench.py startup   # start -> first HTTP 200 (wall and the supervisor's CPU): launcher vs bare, tini, dumb-init
    benches/bench.py idle      # RSS once ready and after a reload, then 60 s idle CPU ticks / context switches
    benches/bench.py ready     # gunicorn's listener appearing -> READY=1 on our notify socket
    benches/bench.py signal    # HUP to the supervisor -> gunicorn master's handler runs
    benches/bench.py restarts  # requests refused while gunicorn's master crashes and is restarted,
                               # and across `systemctl restart` in a real systemd (bare, plain install, socket unit)
    benches/bench.py firewall  # `check` with no ruleset, ufw's, firewalld's and 10,000 rules, vs `nft list ruleset`
    benches/bench.py addresses # verification time and the launcher's CPU on hosts with 10 to 2,000 addresses
    benches/bench.py all       # every one of them, then `report`
    benches/bench.py report    # benches/RESULTS.md from target/bench/*.json

Every bench runs in a network namespace of its own (lo plus a veth pair, one end
198.18.0.1/24, so the launcher probes two addresses as on a real host), with the compared
tools interleaved within one run. Results go to target/bench/NAME.json; `report` turns them
into benches/RESULTS.md. Needs root (namespaces), the release builds and the tools that
benches/setup installs. Nothing here is a test: no figure is asserted.

Kinds: `launcher` is the product (`cargo build --release`, linked statically by
.cargo/config.toml); `launcher-dynamic` is the same source linked dynamically (benches/setup
builds it into target/bench-dynamic), for comparison; `bare` is gunicorn alone; `tini`,
`dumb-init` (and `supervisord` in the idle bench) run the same gunicorn.

Only the standard library is used.
"""

import ctypes
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "bench"
RESULTS = ROOT / "benches" / "RESULTS.md"


def build_triple():
    """The target triple `cargo build` builds for: .cargo/config.toml's [build] target."""
    try:
        with open(ROOT / ".cargo" / "config.toml", "rb") as fh:
            return tomllib.load(fh)["build"]["target"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return None


TRIPLE = build_triple()
# The product: `cargo build --release`, linked statically by .cargo/config.toml.
LAUNCHER = ROOT / "target" / TRIPLE / "release" / "gunicorn-launcher" if TRIPLE else ROOT / "target" / "release" / "gunicorn-launcher"
# For comparison: the same source linked dynamically (benches/setup, target dir target/bench-dynamic).
LAUNCHER_DYNAMIC = ROOT / "target" / "bench-dynamic" / (TRIPLE or "") / "release" / "gunicorn-launcher"
# For before-and-after rows: the launcher built from the revision named in benches/before
# (benches/setup builds it into target/bench-before), when there is one.
# The launcher built from the revision in benches/previous (the start of the change being
# measured): `launcher-previous` in the start, idle and signal benches.
LAUNCHER_PREVIOUS = ROOT / "target" / "bench-previous" / (TRIPLE or "") / "release" / "gunicorn-launcher"
LAUNCHER_BEFORE = ROOT / "target" / "bench-before" / (TRIPLE or "") / "release" / "gunicorn-launcher"
# The product as the linker left it: `launcher-as-linked` in the start bench (install_copies).
LAUNCHER_AS_LINKED = LAUNCHER
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
BENCH_VENV = ROOT / "target" / "bench-venv"
DUMB_INIT = BENCH_VENV / "bin" / "dumb-init"
SUPERVISORD = BENCH_VENV / "bin" / "supervisord"
EXAMPLES = ROOT / "examples"
HOOKS = ROOT / "benches" / "hooks.py"
APP = ["-w", "1", "hello:app"]
MACHINE = None  # machine(), taken when the bench starts (main)
CLK_TCK = os.sysconf("SC_CLK_TCK")

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
PR_SET_CHILD_SUBREAPER = 36


def which(name):
    path = shutil.which(name)
    if not path:
        sys.exit(f"bench: {name} not found: run benches/setup")
    return path


# ---------------------------------------------------------------- namespaces and processes


class Netns:
    """A fresh network namespace that this process enters (and leaves on exit), with lo up
    and veth0 = 198.18.0.1/24 up. Every child started inside inherits it."""

    def __init__(self, tag):
        self.name = f"glbench-{tag}-{os.getpid()}"

    def __enter__(self):
        ip = which("ip")
        subprocess.run([ip, "netns", "add", self.name], check=True)
        # No dummy driver on every kernel: a veth pair with both ends inside serves as
        # the host's "eth0" (an up interface with an address the launcher must probe).
        for cmd in (
            ["link", "set", "lo", "up"],
            ["link", "add", "veth0", "type", "veth", "peer", "name", "veth1"],
            ["addr", "add", "198.18.0.1/24", "dev", "veth0"],
            ["link", "set", "veth1", "up"],
            ["link", "set", "veth0", "up"],
        ):
            if subprocess.run([ip, "-n", self.name, *cmd]).returncode != 0:
                subprocess.run([ip, "netns", "del", self.name])
                sys.exit(f"bench: ip {' '.join(cmd)} failed in {self.name}")
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            sys.exit(f"bench: setns: {os.strerror(ctypes.get_errno())}")
        os.close(fd)
        return self

    def __exit__(self, *exc):
        libc.setns(self.home, CLONE_NEWNET)
        os.close(self.home)
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def become_subreaper():
    # Orphans of tini/dumb-init/gunicorn come to us, so cleanup can find and reap them.
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def ppid_map():
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(root):
    parents = ppid_map()
    out, queue = [], [root]
    while queue:
        p = queue.pop()
        for child, parent in parents.items():
            if parent == p:
                out.append(child)
                queue.append(child)
    return out


def reap_all():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_everything_of_ours():
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while descendants(os.getpid()) and time.monotonic() < deadline:
        reap_all()
        time.sleep(0.01)
    reap_all()


def stop(proc, timeout=10.0):
    """TERM the supervisor (as systemd would), wait for it, then make sure nothing of its
    tree is left (SIGKILL and reap whatever is)."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        pass
    kill_everything_of_ours()


def candidate_env(xdg, extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID")}
    env["PATH"] = f"{GUNICORN.parent}:{env.get('PATH', '/usr/bin:/bin')}"
    # gunicorn >= 25.1 opens $XDG_RUNTIME_DIR/gunicorn.ctl: one per instance, never shared.
    env["XDG_RUNTIME_DIR"] = str(xdg)
    env.update(extra or {})
    return env


def supervised(kind, port, extra_args=()):
    """The argv that starts gunicorn (1 worker, examples/hello.py) on 0.0.0.0:port under `kind`."""
    gun = [str(GUNICORN), *extra_args, *APP]
    bound = [str(GUNICORN), "-b", f"0.0.0.0:{port}", *extra_args, *APP]
    if kind == "bare":
        return bound
    if kind == "launcher":
        return [str(LAUNCHER), "run", "--port", str(port), "--", *gun]
    if kind == "launcher-dynamic":
        return [str(LAUNCHER_DYNAMIC), "run", "--port", str(port), "--", *gun]
    if kind == "launcher-previous":
        return [str(LAUNCHER_PREVIOUS), "run", "--port", str(port), "--", *gun]
    if kind == "launcher-as-linked":
        return [str(LAUNCHER_AS_LINKED), "run", "--port", str(port), "--", *gun]
    if kind == "tini":
        return [which("tini"), "--", *bound]
    if kind == "tini-static":
        return [which("tini-static"), "--", *bound]
    if kind == "dumb-init":
        return [str(DUMB_INIT), *bound]
    raise ValueError(kind)


def supervisord_argv(port, workdir, env, extra_args=()):
    conf = workdir / f"supervisord-{port}.conf"
    command = " ".join([str(GUNICORN), "-b", f"0.0.0.0:{port}", *extra_args, *APP])
    envline = ",".join(f'{k}="{env[k]}"' for k in ("PATH", "XDG_RUNTIME_DIR"))
    conf.write_text(
        "[supervisord]\n"
        "nodaemon=true\n"
        f"logfile={workdir}/supervisord-{port}.log\n"
        f"pidfile={workdir}/supervisord-{port}.pid\n"
        f"childlogdir={workdir}\n"
        "[program:gunicorn]\n"
        f"command={command}\n"
        f"directory={EXAMPLES}\n"
        f"environment={envline}\n"
        "stopasgroup=true\n"
        "killasgroup=true\n"
        "autorestart=true\n"
    )
    return [str(SUPERVISORD), "-n", "-c", str(conf)]


# ---------------------------------------------------------------- small clients


def http_status(host, port, timeout=10.0):
    """GET / and the status code, or None if refused/reset."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(256)
            if not chunk:
                return None
            data += chunk
        return int(data.split(b" ", 2)[1])
    except OSError:
        return None
    finally:
        s.close()


def first_200(port, t0, limit=60.0, period=0.001, cpu_of=None):
    """Polls every `period` until GET / answers 200; returns monotonic seconds since t0.
    With `cpu_of` (a pid), returns (seconds, that process's CPU ms), its CPU clock read
    right as the 200 arrived."""
    while True:
        if http_status("127.0.0.1", port) == 200:
            elapsed = time.monotonic() - t0
            return elapsed if cpu_of is None else (elapsed, process_cpu_ms(cpu_of))
        if time.monotonic() - t0 > limit:
            raise RuntimeError(f"no HTTP 200 on port {port} within {limit} s")
        time.sleep(period)


def tcp_listening(port):
    """True if an AF_INET TCP listener on `port` exists: one sock_diag dump, filtered by
    state and port in the kernel (what `ss -ltn 'sport = :port'` asks), about 30 µs."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4)  # NETLINK_SOCK_DIAG
    try:
        req = struct.pack("=BBBxI", socket.AF_INET, socket.IPPROTO_TCP, 0, 1 << 10)  # TCP_LISTEN
        req += struct.pack("!HH", port, 0) + bytes(32) + struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF)
        hdr = struct.pack("=IHHII", 16 + len(req), 20, 0x301, 1, 0)  # SOCK_DIAG_BY_FAMILY, REQUEST|DUMP
        s.send(hdr + req)
        found = False
        while True:
            data = s.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                if kind == 3 or kind == 2:  # DONE, ERROR
                    return found
                if kind == 20:
                    state = data[off + 17]
                    sport = struct.unpack_from("!H", data, off + 20)[0]
                    found |= state == 10 and sport == port
                off += (length + 3) & ~3
    finally:
        s.close()


# ---------------------------------------------------------------- statistics and context


def summary(values):
    v = sorted(values)
    # Inclusive: quartiles stay within min..max however few the samples.
    q = statistics.quantiles(v, n=4, method="inclusive") if len(v) >= 2 else [v[0]] * 3
    return {"n": len(v), "median": statistics.median(v), "q1": q[0], "q3": q[2], "min": v[0], "max": v[-1]}


def proc_ticks():
    """pid -> (comm, utime+stime) for every process on the host."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            f = stat.rsplit(")", 1)[1].split()
            out[int(entry)] = (comm, int(f[11]) + int(f[12]))
    return out


def cpu_busy():
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f), idle


class Activity:
    """What else the machine did while a bench ran: load averages, whole-machine CPU busy
    share, and the other processes that used the most CPU (ours excluded)."""

    def __enter__(self):
        self.t0 = time.monotonic()
        self.load0 = os.getloadavg()
        self.cpu0 = cpu_busy()
        self.ticks0 = proc_ticks()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.t0
        self.load1 = os.getloadavg()
        total1, idle1 = cpu_busy()
        total = total1 - self.cpu0[0]
        busy = total - (idle1 - self.cpu0[1])
        ours = set(descendants(os.getpid())) | {os.getpid()}
        by_comm = {}
        for pid, (comm, ticks) in proc_ticks().items():
            if pid in ours:
                continue
            before = self.ticks0.get(pid, (comm, 0))[1]
            if ticks - before > 0:
                by_comm[comm] = by_comm.get(comm, 0) + ticks - before
        top = sorted(by_comm.items(), key=lambda kv: -kv[1])[:6]
        self.report = {
            "seconds": round(self.seconds, 1),
            "loadavg_before": [round(x, 2) for x in self.load0],
            "loadavg_after": [round(x, 2) for x in self.load1],
            "cpu_busy_pct": round(100 * busy / total, 1) if total else 0,
            "others_cpu_s": [[c, round(t / CLK_TCK, 1)] for c, t in top],
        }


def save(name, data):
    OUT.mkdir(parents=True, exist_ok=True)
    data["command"] = f"benches/bench.py {' '.join(sys.argv[1:])}".strip()
    data["when"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    data["machine"] = MACHINE or machine()
    # Paths relative to the repository, so results read the same on any checkout.
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=1).replace(str(ROOT) + "/", ""))
    print(f"bench: wrote {OUT / (name + '.json')}", file=sys.stderr)


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- 1. check vs lsof / ss

HOLDER = r"""
import resource, socket, sys
n, port = int(sys.argv[1]), int(sys.argv[2])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port))
l.listen(4096)
keep = []
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port))
    a, _ = l.accept()
    keep += [c, a]
l.close()
print("ready", flush=True)
sys.stdin.read()
"""


def spawn_timed(argv, env):
    """Wall time of one whole process (posix_spawn to waitpid), and its exit code."""
    devnull = [(os.POSIX_SPAWN_OPEN, fd, "/dev/null", os.O_RDWR, 0) for fd in (0, 1, 2)]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=devnull)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter_ns()
    return (t1 - t0) / 1e6, os.waitstatus_to_exitcode(status)


def interleaved(tools, rounds, env, seed):
    """Each command's whole-process times (ms) over `rounds` rounds after 3 warm-up rounds,
    every round in a fresh random order; and what else the machine did meanwhile."""
    times = {name: [] for name in tools}
    rng = random.Random(seed)
    with Activity() as act:
        for r in range(rounds + 3):
            order = list(tools)
            rng.shuffle(order)
            for name in order:
                ms, _ = spawn_timed(tools[name], env)
                if r >= 3:
                    times[name].append(ms)
    return times, act


def wait_notify(sock, proc, what=b"READY=1", timeout=60.0):
    """Waits for a message with the line `what` on our notify socket; returns the monotonic
    time it arrived."""
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            msg = sock.recv(4096)
        except socket.timeout:
            raise RuntimeError(f"no {what.decode()} within {timeout} s (launcher exit {proc.poll()})")
        if what in msg.split(b"\n"):
            return time.monotonic()


def wait_ready_notify(sock, proc, timeout=60.0):
    """Waits for READY=1 on our notify socket; returns the monotonic time it arrived."""
    return wait_notify(sock, proc, b"READY=1", timeout)


def notify_socket(tmp):
    path = str(tmp / f"notify-{time.monotonic_ns()}")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    return s, path


def bench_check(args):
    rounds = int(args.get("rounds", 30))
    pairs = int(args.get("pairs", 10000))
    port, single, empty = 8001, 8002, 8003
    become_subreaper()
    with tempfile.TemporaryDirectory(prefix="glbench-") as tmp, Netns("check"):
        tmp = Path(tmp)
        # Several holders, as on a real host (and RLIMIT_NOFILE's hard limit may be 20,000).
        per = int(args.get("pairs-per-process", 2500))
        counts = [min(per, pairs - i) for i in range(0, pairs, per)]
        log(f"opening {2 * pairs} TCP sockets ({pairs} connected loopback pairs in {len(counts)} processes)")
        holders = [subprocess.Popen([sys.executable, "-c", HOLDER, str(n), str(9000 + i)], stdin=subprocess.PIPE, stdout=subprocess.PIPE) for i, n in enumerate(counts)]
        for holder in holders:
            assert holder.stdout.readline().strip() == b"ready"
        nsock, path = notify_socket(tmp)
        env = candidate_env(tmp, {"NOTIFY_SOCKET": path})
        launched = subprocess.Popen(supervised("launcher", port), cwd=EXAMPLES, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "launcher.log", "w"))
        wait_ready_notify(nsock, launched)
        # The same gunicorn bound to one address: `check` then stops before probing (exit 1).
        (tmp / "xdg-single").mkdir()
        lo_only = subprocess.Popen([str(GUNICORN), "-b", f"127.0.0.1:{single}", *APP], cwd=EXAMPLES, env=candidate_env(tmp / "xdg-single"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first_200(single, time.monotonic())
        ss = which("ss")
        sockets_in_ns = len(subprocess.run([ss, "-Htan"], capture_output=True, text=True).stdout.splitlines())
        processes = sum(1 for e in os.listdir("/proc") if e.isdigit())
        tools = {
            "check": [str(LAUNCHER), "check", "--port", str(port)],
            "check (launcher-dynamic)": [str(LAUNCHER_DYNAMIC), "check", "--port", str(port)],
            "check (single address: no probe)": [str(LAUNCHER), "check", "--port", str(single)],
            "check (nothing listening)": [str(LAUNCHER), "check", "--port", str(empty)],
            f"lsof -i :{port}": [which("lsof"), "-i", f":{port}"],
            f"ss -ltnp 'sport = :{port}'": [ss, "-ltnp", f"sport = :{port}"],
            f"ss -ltn 'sport = :{port}'": [ss, "-ltn", f"sport = :{port}"],
            "cat /proc/net/tcp /proc/net/tcp6": [which("cat"), "/proc/net/tcp", "/proc/net/tcp6"],
            "true (process start floor)": [which("true")],
        }
        if not LAUNCHER_DYNAMIC.exists():
            del tools["check (launcher-dynamic)"]
        plain = candidate_env(tmp, {})
        codes = {name: spawn_timed(argv, plain)[1] for name, argv in tools.items()}
        log(f"exit codes: {codes}")
        times, act = interleaved(tools, rounds, plain, seed=1)
        # What one probe costs, from this process: connect, GET /, status line.
        probe_ms = {}
        for host in ("127.0.0.1", "198.18.0.1"):
            samples = []
            for _ in range(50):
                t0 = time.perf_counter_ns()
                assert http_status(host, port) == 200
                samples.append((time.perf_counter_ns() - t0) / 1e6)
            probe_ms[host] = summary(samples)
        hyper = None
        if shutil.which("hyperfine") and not args.get("no-hyperfine"):
            hf = tmp / "hyperfine.json"
            names = ["check", f"lsof -i :{port}", f"ss -ltnp 'sport = :{port}'", f"ss -ltn 'sport = :{port}'"]
            cmd = [which("hyperfine"), "-N", "-i", "--warmup", "3", "--runs", "20", "--export-json", str(hf)]
            for n in names:
                cmd += ["-n", n, " ".join(f"'{a}'" if " " in a else a for a in tools[n])]
            subprocess.run(cmd, env=plain, stdout=subprocess.DEVNULL, check=True)
            hyper = {r["command"]: summary([t * 1000 for t in r["times"]]) for r in json.loads(hf.read_text())["results"]}
            hyper["command"] = " ".join(cmd[:9]) + " ..."
        for holder in holders:
            holder.stdin.close()
        stop(launched)
        lo_only.terminate()
        kill_everything_of_ours()
    save("check", {
        "rounds": rounds, "pairs": pairs, "holders": len(counts), "sockets_in_namespace": sockets_in_ns, "processes_on_host": processes,
        "exit_codes": codes, "argv": tools, "ms": {k: summary(v) for k, v in times.items()},
        "probe_ms": probe_ms, "hyperfine_ms": hyper, "activity": act.report,
    })


# ---------------------------------------------------------------- 2. start -> first 200


def ratio_ci(values, base, resamples=2000):
    """95 % bootstrap interval of median(values) / median(base): how precisely this run pins
    the ratio down, given its own spread."""
    rng = random.Random(0)
    ratios = sorted(
        statistics.median(rng.choices(values, k=len(values))) / statistics.median(rng.choices(base, k=len(base)))
        for _ in range(resamples)
    )
    return [ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]]


def process_cpu_ms(pid):
    """CPU time (user + system) of the whole process `pid` so far, in ms with ns precision:
    its process CPU clock, Linux's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED) =
    (~pid << 3) | 2. The kernel sums every thread the process ever had, ended ones included
    (/proc/PID/task/*/sched only shows live threads), and lets any process read it."""
    return time.clock_gettime_ns((~pid << 3) | 2) / 1e6


def minor_faults(pid):
    """The minor page faults of process `pid` so far (/proc/PID/stat's tenth field)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def cpu_at_rest(pid, log_path, launcher, limit=5.0, period=0.02):
    """The process CPU clock of `pid` once it has settled: for a launcher, after its log says
    `verified:` (READY=1 follows at once, then the release of start-up's pages); then until two
    reads `period` apart agree. Everything the supervisor does to start, verification included."""
    deadline = time.monotonic() + limit
    while launcher and b"verified:" not in Path(log_path).read_bytes():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no verdict in {log_path} within {limit} s")
        time.sleep(period)
    last = process_cpu_ms(pid)
    while True:
        time.sleep(period)
        now = process_cpu_ms(pid)
        if now == last or time.monotonic() > deadline:
            return now
        last = now


def with_dynamic(kinds, after):
    """`kinds` with launcher-dynamic inserted after `after`, and launcher-previous after the
    launcher, for those that benches/setup built."""
    if LAUNCHER_PREVIOUS.exists():
        i = kinds.index("launcher") + 1
        kinds = kinds[:i] + ["launcher-previous"] + kinds[i:]
    else:
        log(f"{LAUNCHER_PREVIOUS.relative_to(ROOT)} not built (benches/previous, benches/setup): launcher-previous left out")
    if not LAUNCHER_DYNAMIC.exists():
        log(f"{LAUNCHER_DYNAMIC.relative_to(ROOT)} not built (benches/setup): launcher-dynamic left out")
        return kinds
    i = kinds.index(after) + 1
    return kinds[:i] + ["launcher-dynamic"] + kinds[i:]


FLOOR = ROOT / "target" / "bench-floor"


def spawn_cpu_ms(argv, env):
    """CPU time (user + system) of one whole process, start to exit, from wait4's rusage."""
    devnull = [(os.POSIX_SPAWN_OPEN, fd, "/dev/null", os.O_RDWR, 0) for fd in (0, 1, 2)]
    pid = os.posix_spawn(argv[0], argv, env, file_actions=devnull)
    _, _, usage = os.wait4(pid, 0)
    return (usage.ru_utime + usage.ru_stime) * 1000


def start_floor(rounds=200):
    """What a process costs to start and exit here before it does anything of its own
    (benches/floor, built by benches/setup): no C library, glibc's start alone (static, empty
    main), `true` (glibc, linked dynamically), `tini --version` and `gunicorn-launcher
    --version`, interleaved; and one CPUID instruction's ns. Empty when they are not built."""
    if not (FLOOR / "nolibc").exists():
        log(f"{FLOOR.relative_to(ROOT)} not built (benches/setup): start floor left out")
        return {}, None
    progs = {
        "no C library (static)": [str(FLOOR / "nolibc")],
        "glibc's start alone (static, empty main)": [str(FLOOR / "glibc-static-empty")],
        "true (glibc, dynamic)": [which("true")],
        "tini --version": [which("tini"), "--version"],
        "gunicorn-launcher --version": [str(LAUNCHER), "--version"],
    }
    env = candidate_env(Path("/tmp"))
    cpu = {k: [] for k in progs}
    for r in range(rounds + 3):
        for k in progs:
            ms = spawn_cpu_ms(progs[k], env)
            if r >= 3:
                cpu[k].append(ms)
    runs = [float(subprocess.run([str(FLOOR / "cpuid")], capture_output=True, text=True, check=True).stdout)
            for _ in range(5)]
    return cpu, statistics.median(runs)


def bench_startup(args):
    rounds = int(args.get("rounds", 30))
    kinds = with_dynamic(["bare", "launcher", "launcher-as-linked", "tini", "dumb-init"], "launcher")
    become_subreaper()
    times = {k: [] for k in kinds}
    # The supervisor's own CPU time from its start (fork) to gunicorn's first 200; for
    # bare, gunicorn's master's.
    cpu = {k: [] for k in kinds}
    # The same once the supervisor is at rest: a launcher's whole verification and READY=1.
    settled = {k: [] for k in kinds}
    # Its minor page faults by then (each a few µs; the bench's steps before exec included).
    faults = {k: [] for k in kinds}
    port = 20000
    with tempfile.TemporaryDirectory(prefix="glbench-") as tmp, Netns("startup"):
        tmp = Path(tmp)
        with Activity() as act:
            for r in range(rounds + 1):
                order = kinds[r % len(kinds):] + kinds[: r % len(kinds)]
                for kind in order:
                    port += 1
                    xdg = tmp / f"xdg-{port}"
                    xdg.mkdir()
                    env = candidate_env(xdg)
                    log_path = tmp / f"{kind}-{port}.log"
                    with open(log_path, "w") as logf:
                        t0 = time.monotonic()
                        proc = subprocess.Popen(supervised(kind, port), cwd=EXAMPLES, env=env, stdout=logf, stderr=logf)
                        elapsed, own = first_200(port, t0, cpu_of=proc.pid)
                        rest = cpu_at_rest(proc.pid, log_path, kind.startswith("launcher"))
                        faulted = minor_faults(proc.pid)
                    stop(proc)
                    if r >= 1:  # one warm-up round
                        times[kind].append(elapsed * 1000)
                        cpu[kind].append(own)
                        settled[kind].append(rest)
                        faults[kind].append(faulted)
    # The launcher's own work before it could exec gunicorn (CLI, config, command assembly,
    # `which`): `print-command` does all of it and then prints instead of forking.
    front = {"print-command": [str(LAUNCHER), "print-command", "--", str(GUNICORN), *APP], "true": [which("true")]}
    if "launcher-dynamic" in kinds:
        front["print-command (launcher-dynamic)"] = [str(LAUNCHER_DYNAMIC), *front["print-command"][1:]]
    front_ms = {k: [] for k in front}
    for r in range(53):
        for k in front:
            ms, _ = spawn_timed(front[k], candidate_env(Path("/tmp")))
            if r >= 3:
                front_ms[k].append(ms)
    base = statistics.median(times["bare"])
    floor_ms, cpuid_ns = start_floor()
    save("startup", {
        "front_ms": {k: summary(v) for k, v in front_ms.items()},
        "floor_cpu_ms": {k: summary(v) for k, v in floor_ms.items()},
        "cpuid_ns": cpuid_ns,
        "rounds": rounds, "argv": {k: supervised(k, 8001) for k in kinds},
        "ms": {k: summary(v) for k, v in times.items()},
        "supervisor_cpu_ms": {k: summary(v) for k, v in cpu.items()},
        "supervisor_cpu_at_rest_ms": {k: summary(v) for k, v in settled.items()},
        "supervisor_minor_faults_at_rest": {k: summary(v) for k, v in faults.items()},
        "ratio_to_bare": {k: statistics.median(v) / base for k, v in times.items()},
        "ratio_ci95": {k: ratio_ci(v, times["bare"]) for k, v in times.items()},
        "activity": act.report,
    })


# ---------------------------------------------------------------- 3+4. RSS and idle cost


def status_fields(pid):
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def counters(pid):
    st = status_fields(pid)
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return {
        "ticks": int(f[11]) + int(f[12]),
        "switches": int(st["voluntary_ctxt_switches"]) + int(st["nonvoluntary_ctxt_switches"]),
        "threads": int(st["Threads"]),
    }


def memory(pid):
    """Resident memory of `pid` in KiB, two ways. /proc/PID/status (VmRSS, RssAnon, RssFile,
    VmHWM) reads the mm's RSS counters, which the kernel batches per CPU: they can lag the
    truth by up to about 32 pages per CPU, and right after a process gave pages back (madvise) they
    often still show the old value. /proc/PID/smaps_rollup walks the page tables: its `Rss`
    (and `Pss`, `Anonymous`) is exact at the moment of reading."""
    st = status_fields(pid)
    kib = lambda k: int(st.get(k, "0 kB").split()[0])
    rollup = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        k, _, v = line.partition(":")
        if v.strip().endswith("kB"):
            rollup[k] = int(v.split()[0])
    return {
        "VmRSS": kib("VmRSS"), "RssAnon": kib("RssAnon"), "RssFile": kib("RssFile"), "VmHWM": kib("VmHWM"),
        "smaps_Rss": rollup.get("Rss"), "smaps_Pss": rollup.get("Pss"), "smaps_Anonymous": rollup.get("Anonymous"),
    }


def children(pid):
    parents = ppid_map()
    return [c for c, p in parents.items() if p == pid]


def process_key(pid):
    """(pid, start time) while `pid` lives and is not a zombie, else None: a pid the kernel
    reused is another process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = stat.rsplit(")", 1)[1].split()
    return None if f[0] in ("Z", "X") else (pid, f[19])


def gunicorn_workers(kind, pid):
    """The current workers of the gunicorn that `pid` (a supervisor, or gunicorn's master
    for bare) runs: the master's children, each as process_key()."""
    masters = [pid] if kind == "bare" else children(pid)
    return [k for m in masters for k in map(process_key, children(m)) if k]


def reload_and_wait(kind, proc, port, nsock=None, timeout=60.0):
    """SIGHUP to the supervisor, then waits until the reload is over: for a launcher,
    RELOADING=1 and then the next READY=1 on its notify socket (it sends READY=1 once the
    previous workers are gone and the new ones answer); for the others, until every worker
    the master had before the HUP is gone and GET / answers 200. Returns the seconds taken."""
    old = [] if nsock else gunicorn_workers(kind, proc.pid)
    if not nsock and not old:
        raise RuntimeError(f"{kind}: no gunicorn worker found under pid {proc.pid}: cannot tell when a reload is over")
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGHUP)
    if nsock:
        wait_notify(nsock, proc, b"RELOADING=1", timeout)
        wait_notify(nsock, proc, b"READY=1", timeout)
        return time.monotonic() - t0
    while any(process_key(k[0]) == k for k in old):
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{kind}: gunicorn's workers {[k[0] for k in old]} still there {timeout} s after HUP")
        time.sleep(0.005)
    first_200(port, t0, limit=timeout)
    return time.monotonic() - t0


def asleep(pid, timeout=2.0):
    """Waits until `pid` (a launcher, one thread) is blocked in its loop's poll: the first
    field of /proc/PID/syscall is the number of poll (7) or ppoll (271). After READY=1 it
    still runs the decisions that follow and gives its pages back a second time before it
    sleeps; memory read before that is a moment in passing, not what stays."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        first = Path(f"/proc/{pid}/syscall").read_text().split(" ", 1)[0]
        if first in ("7", "271"):
            return
        time.sleep(0.001)
    raise RuntimeError(f"pid {pid} not asleep in poll {timeout} s after READY=1")


def bench_idle(args):
    seconds = float(args.get("seconds", 60))
    kinds = with_dynamic(["launcher", "tini", "tini-static", "dumb-init", "supervisord", "bare"], "launcher")
    if not shutil.which("tini-static"):
        kinds.remove("tini-static")
    become_subreaper()
    with tempfile.TemporaryDirectory(prefix="glbench-") as tmp, Netns("idle"):
        tmp = Path(tmp)
        procs, ports, nsocks, ready, reloaded, reload_s = {}, {}, {}, {}, {}, {}
        for i, kind in enumerate(kinds):
            port = ports[kind] = 8101 + i
            xdg = tmp / f"xdg-{kind}"
            xdg.mkdir()
            env = candidate_env(xdg)
            if kind.startswith("launcher"):
                # As under systemd (Type=notify, no watchdog): READY=1 goes to a socket of the
                # bench's, one per launcher so that each message's sender is known.
                nsocks[kind], env["NOTIFY_SOCKET"] = notify_socket(tmp)
            argv = supervisord_argv(port, tmp, env) if kind == "supervisord" else supervised(kind, port)
            logf = open(tmp / f"{kind}.log", "w")
            procs[kind] = subprocess.Popen(argv, cwd=EXAMPLES, env=env, stdout=logf, stderr=logf)
            if kind in nsocks:
                wait_notify(nsocks[kind], procs[kind], b"READY=1")
                asleep(procs[kind].pid)
                ready[kind] = memory(procs[kind].pid)
                first_200(port, time.monotonic())
            else:
                first_200(port, time.monotonic())
                ready[kind] = memory(procs[kind].pid)
            log(f"{kind} ready on port {port}")
        # One reload at a time, so that no other reload competes for the CPUs.
        for kind in kinds:
            reload_s[kind] = reload_and_wait(kind, procs[kind], ports[kind], nsocks.get(kind))
            if kind in nsocks:
                asleep(procs[kind].pid)
            reloaded[kind] = memory(procs[kind].pid)
            log(f"{kind} reloaded in {reload_s[kind]:.2f} s")
        time.sleep(2)  # let every supervisor finish whatever follows readiness
        with Activity() as act:
            before = {k: counters(p.pid) for k, p in procs.items()}
            time.sleep(seconds)
            after = {k: counters(p.pid) for k, p in procs.items()}
        alive = {k: p.poll() is None for k, p in procs.items()}
        for p in procs.values():
            stop(p)
    rows = {}
    for k in kinds:
        rows[k] = {
            "ready": ready[k],
            "after_reload": reloaded[k],
            "reload_s": reload_s[k],
            "threads": after[k]["threads"],
            "idle_ticks": after[k]["ticks"] - before[k]["ticks"],
            "idle_switches": after[k]["switches"] - before[k]["switches"],
            "alive": alive[k],
            "binary": "supervisord (python)" if k == "supervisord" else supervised(k, 1)[0],
        }
    save("idle", {"seconds": seconds, "clk_tck": CLK_TCK, "supervisor": rows, "activity": act.report})


# ---------------------------------------------------------------- 5. listener -> READY=1


def wait_listener(port, t0, limit=60.0):
    """Polls sock_diag until the listener exists. Returns (appeared, resolution): the start
    of the first poll that saw it and the span between the start of the last poll that did
    not and the end of the one that did (the listener appeared inside that span)."""
    last_miss = t0
    while True:
        a = time.monotonic()
        seen = tcp_listening(port)
        b = time.monotonic()
        if seen:
            return a, b - last_miss
        if a - t0 > limit:
            raise RuntimeError(f"no listener on {port}")
        last_miss = a
        time.sleep(0.0001)


def bench_ready(args):
    rounds = int(args.get("rounds", 16))
    kinds = with_dynamic(["launcher", "bare"], "bare")
    become_subreaper()
    from_stamp = {k: [] for k in kinds}
    from_poll = {k: [] for k in kinds}
    res, stamp_vs_poll = [], []
    port = 21000
    with tempfile.TemporaryDirectory(prefix="glbench-") as tmp, Netns("ready"):
        tmp = Path(tmp)
        with Activity() as act:
            for r in range(rounds + 1):
                for kind in kinds[r % len(kinds):] + kinds[: r % len(kinds)]:
                    port += 1
                    xdg = tmp / f"xdg-{port}"
                    xdg.mkdir()
                    stamp = tmp / f"listen-{port}"
                    env = candidate_env(xdg, {"BENCH_LISTEN_FILE": str(stamp)})
                    nsock = None
                    if kind != "bare":
                        nsock, path = notify_socket(tmp)
                        env["NOTIFY_SOCKET"] = path
                    with open(tmp / f"{kind}-{port}.log", "w") as logf:
                        t0 = time.monotonic()
                        argv = supervised(kind, port, ["-c", str(HOOKS)])
                        proc = subprocess.Popen(argv, cwd=EXAMPLES, env=env, stdout=logf, stderr=logf)
                        appeared, resolution = wait_listener(port, t0)
                        if nsock:
                            done = wait_ready_notify(nsock, proc)
                            nsock.close()
                        else:
                            # Bare gunicorn: the first 200 after the listener appeared, the
                            # earliest moment at which anything could honestly say "ready".
                            first_200(port, t0)
                            done = time.monotonic()
                    stop(proc)
                    listening = int(stamp.read_text().split()[0]) / 1e9
                    if r >= 1:
                        from_stamp[kind].append((done - listening) * 1000)
                        from_poll[kind].append((done - appeared) * 1000)
                        res.append(resolution * 1000)
                        stamp_vs_poll.append((appeared - listening) * 1000)
    base = statistics.median(from_stamp["bare"])
    save("ready", {
        "rounds": rounds,
        "ms": {k: summary(v) for k, v in from_stamp.items()},
        "ms_from_poll": {k: summary(v) for k, v in from_poll.items()},
        "launcher_lag_ms": {k: statistics.median(v) - base for k, v in from_stamp.items()},
        "resolution_ms": summary(res), "poll_after_stamp_ms": summary(stamp_vs_poll),
        "activity": act.report,
    })


# ---------------------------------------------------------------- 6. HUP forwarding


def bench_signal(args):
    rounds = int(args.get("rounds", 20))
    kinds = with_dynamic(["bare", "launcher", "tini", "dumb-init"], "dumb-init")
    become_subreaper()
    lat = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="glbench-") as tmp, Netns("signal"):
        tmp = Path(tmp)
        procs, stamps, ports = {}, {}, {}
        for i, kind in enumerate(kinds):
            port = ports[kind] = 8201 + i
            xdg = tmp / f"xdg-{kind}"
            xdg.mkdir()
            stamps[kind] = tmp / f"hup-{kind}"
            env = candidate_env(xdg, {"BENCH_HUP_FILE": str(stamps[kind])})
            logf = open(tmp / f"{kind}.log", "w")
            procs[kind] = subprocess.Popen(supervised(kind, port, ["-c", str(HOOKS)]), cwd=EXAMPLES, env=env, stdout=logf, stderr=logf)
            first_200(port, time.monotonic())
        time.sleep(1)
        with Activity() as act:
            for r in range(rounds + 1):
                for kind in kinds[r % len(kinds):] + kinds[: r % len(kinds)]:
                    seen = len(stamps[kind].read_text().split()) if stamps[kind].exists() else 0
                    sent = time.monotonic_ns()
                    os.kill(procs[kind].pid, signal.SIGHUP)
                    deadline = time.monotonic() + 5
                    while True:
                        lines = stamps[kind].read_text().split() if stamps[kind].exists() else []
                        if len(lines) > seen:
                            break
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"{kind}: HUP never reached gunicorn's master")
                        time.sleep(0.001)
                    if r >= 1:
                        lat[kind].append((int(lines[seen]) - sent) / 1000)
                    # Let the reload finish (new worker answering) before the next signal.
                    time.sleep(0.3)
                    first_200(ports[kind], time.monotonic())
                    time.sleep(0.1)
        for p in procs.values():
            stop(p)
        during = signal_during_verification(tmp, int(args.get("slow-rounds", 8)))
    base = statistics.median(lat["bare"])
    save("signal", {
        "rounds": rounds, "us": {k: summary(v) for k, v in lat.items()},
        "forwarding_us": {k: statistics.median(v) - base for k, v in lat.items()},
        "activity": act.report, "during_verification": during,
    })


def signal_during_verification(tmp, rounds):
    """HUP sent 50 ms after the listener appeared, while the app is still importing
    (benches/slow_app.py, 1 s): sent to gunicorn's master directly (bare), through tini,
    and through the launcher, which is then verifying (its HTTP probe waits for the
    worker)."""
    kinds = ["bare", "launcher", "tini"]
    lat = {k: [] for k in kinds}
    port = 22000
    extra = ["-c", str(HOOKS), "--pythonpath", str(ROOT / "benches")]
    for r in range(rounds):
        for kind in kinds[r % len(kinds):] + kinds[: r % len(kinds)]:
            port += 1
            xdg = tmp / f"xdg-slow-{port}"
            xdg.mkdir()
            stamp = tmp / f"hup-slow-{port}"
            env = candidate_env(xdg, {"BENCH_HUP_FILE": str(stamp), "BENCH_IMPORT_SECONDS": "1"})
            argv = supervised(kind, port, extra)
            argv[-1] = "slow_app:app"
            with open(tmp / f"slow-{kind}-{port}.log", "w") as logf:
                proc = subprocess.Popen(argv, cwd=EXAMPLES, env=env, stdout=logf, stderr=logf)
                wait_listener(port, time.monotonic())
                time.sleep(0.05)
                while not stamp.exists():  # the master's wrapper is in place (when_ready ran)
                    time.sleep(0.001)
                sent = time.monotonic_ns()
                proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 10
                while not stamp.read_text().split() and time.monotonic() < deadline:
                    time.sleep(0.001)
                got = stamp.read_text().split()
            stop(proc)
            lat[kind].append((int(got[0]) - sent) / 1e6 if got else float("nan"))
    return {"rounds": rounds, "import_seconds": 1, "ms": {k: summary(v) for k, v in lat.items()}}


# ---------------------------------------------------------------- 7. restarts under load


class LoadClients:
    """`threads` clients, each connecting to addr:port, sending `GET /` and reading the status
    line, in a loop: counts of answered, refused (nothing listened), reset (closed before a
    status line) and timed-out requests, and the times of refusals. After a refusal a client
    waits 1 ms before it tries again, so that the count measures time closed, not loop speed."""

    def __init__(self, addr, port, threads=4):
        self.addr, self.port = addr, port
        self.counts = {"answered": 0, "refused": 0, "reset": 0, "timed_out": 0}
        self.refusals = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def count(self, what):
        with self.lock:
            self.counts[what] += 1
            if what == "refused":
                self.refusals.append(time.monotonic())

    def run(self):
        ask = f"GET / HTTP/1.1\r\nHost: {self.addr}:{self.port}\r\nConnection: close\r\n\r\n".encode()
        while not self.done.is_set():
            try:
                s = socket.create_connection((self.addr, self.port), timeout=15)
            except ConnectionRefusedError:
                self.count("refused")
                time.sleep(0.001)
                continue
            except socket.timeout:
                self.count("timed_out")
                continue
            except OSError:
                self.count("reset")
                continue
            try:
                s.sendall(ask)
                head = b""
                while len(head) < 12:
                    chunk = s.recv(12 - len(head))
                    if not chunk:
                        break
                    head += chunk
                self.count("answered" if head.startswith(b"HTTP/1.") else "reset")
            except socket.timeout:
                self.count("timed_out")
            except OSError:
                self.count("reset")
            finally:
                s.close()

    def answered(self):
        with self.lock:
            return self.counts["answered"]

    def wait_answered(self, more, timeout=60.0):
        start, deadline = self.answered(), time.monotonic() + timeout
        while self.answered() < start + more:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no answers for {timeout} s: {self.counts}")
            time.sleep(0.002)

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join()
        return dict(self.counts)


def master_of(pid, timeout=30.0):
    """The supervisor's gunicorn master: its child (the pid itself for bare gunicorn)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = children(pid)
        if kids:
            return kids[0]
        time.sleep(0.005)
    raise RuntimeError(f"no gunicorn master under {pid}")


def bench_restarts(args):
    """Each mode serves examples/hello.py (2 workers) under a load of 4 clients; `cycles`
    times, gunicorn's master is SIGKILLed, and once answers flow again, the next. What brings
    gunicorn back plays systemd's part (`Restart=` with `RestartSec=100ms`, the cgroup cleared
    as `KillMode=` does): for `bare`, the bench kills the master's remaining workers and starts
    gunicorn again after 100 ms; for `launcher`, the launcher stops the workers and exits 137,
    and the bench starts it again after 100 ms; for `launcher --hold-socket`, the launcher
    restarts gunicorn itself on the socket it holds, and the bench does nothing."""
    cycles = int(args.get("cycles", 5))
    kinds = ["bare", "launcher", "launcher --hold-socket"]
    become_subreaper()
    results = {}
    with tempfile.TemporaryDirectory(prefix="glbench-") as tmp, Netns("restarts"):
        tmp = Path(tmp)
        with Activity() as act:
            for i, kind in enumerate(kinds):
                port = 8301 + i
                xdg = tmp / f"xdg-{i}"
                xdg.mkdir()
                env = candidate_env(xdg)
                if kind == "bare":
                    argv = supervised("bare", port, ["-w", "2"])
                else:
                    argv = supervised("launcher", port, ["-w", "2"])
                    if kind.endswith("--hold-socket"):
                        argv.insert(2, "--hold-socket")
                log_path = tmp / f"restarts-{i}.log"
                logf = open(log_path, "w")
                start = lambda: subprocess.Popen(argv, cwd=EXAMPLES, env=env, stdout=logf, stderr=logf)
                proc = start()
                first_200(port, time.monotonic())
                load = LoadClients("198.18.0.1", port)
                load.wait_answered(20)
                closed = []
                for cycle in range(cycles):
                    if kind.endswith("--hold-socket"):
                        # The next kill waits for the restarted master's verification: killed
                        # before it, the master died in its start, which the launcher does not
                        # retry (it exits 137), and answers alone can come before it.
                        wait_verified(log_path, cycle + 1)
                    refused_before = len(load.refusals)
                    master = proc.pid if kind == "bare" else master_of(proc.pid)
                    os.kill(master, signal.SIGKILL)
                    if kind == "bare":
                        proc.wait()
                        for pid in descendants(os.getpid()):
                            try:
                                os.kill(pid, signal.SIGKILL)
                            except ProcessLookupError:
                                pass
                        reap_all()
                        time.sleep(0.1)
                        proc = start()
                    elif kind == "launcher":
                        proc.wait()
                        reap_all()
                        time.sleep(0.1)
                        proc = start()
                    load.wait_answered(10)
                    times = load.refusals[refused_before:]
                    closed.append((times[-1] - times[0]) * 1000 if times else 0.0)
                counts = load.stop()
                stop(proc)
                logf.close()
                results[kind] = {"counts": counts, "closed_ms": summary(closed), "closed_ms_each": [round(c, 1) for c in closed]}
                log(f"{kind}: {counts}")
            systemd = bench_systemctl_restarts(int(args.get("restarts", 10)))
    save("restarts", {"cycles": cycles, "clients": 4, "modes": results, "restarts": int(args.get("restarts", 10)),
                      "systemctl_restart": systemd, "activity": act.report})


def wait_verified(log_path, times, limit=30.0):
    """Waits until a launcher's log holds `times` verdicts (`verified:` lines)."""
    deadline = time.monotonic() + limit
    while Path(log_path).read_bytes().count(b"verified:") < times:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {times} verdicts in {log_path} within {limit} s")
        time.sleep(0.01)


class BootedSystemd:
    """A real systemd as PID 1 of private namespaces over a throwaway overlay of `/`, booted by
    tests/common/boot-systemd.sh (the script the tests use); commands run inside through
    nsenter. Never on the host's root filesystem."""

    def __init__(self, binds):
        self.cgroup = f"glbench-systemd-{os.getpid()}"
        boot = (ROOT / "tests" / "common" / "boot-systemd.sh").read_text()
        self.log = open(tempfile.mktemp(prefix="glbench-systemd-"), "w")
        self.unshare = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount", "--net", "--uts", "--mount-proc", "--kill-child",
             "sh", "-c", boot, "boot", *map(str, binds)],
            env={**os.environ, "CGROUP": self.cgroup}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.log)
        deadline = time.monotonic() + 30
        self.pid = None
        while self.pid is None:
            kids = Path(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children").read_text().split()
            if kids and Path(f"/proc/{kids[0]}/comm").read_text().strip() == "systemd":
                self.pid = int(kids[0])
            elif self.unshare.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"systemd did not boot: {Path(self.log.name).read_text()}")
            time.sleep(0.02)
        while self.run(["systemctl", "is-system-running"]).stdout.strip() not in ("running", "degraded"):
            if time.monotonic() > deadline + 30:
                raise RuntimeError("systemd in the namespace is not running")
            time.sleep(0.05)

    def run(self, argv, check=False):
        return subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-p", "-n", *argv],
                              capture_output=True, text=True, check=check)

    def write(self, inside, text):
        path = Path(f"/proc/{self.pid}/root{inside}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def prop(self, unit, name):
        return self.run(["systemctl", "show", "-p", name, "--value", unit]).stdout.strip()

    def close(self):
        self.run(["systemctl", "poweroff", "--no-block"])
        try:
            self.unshare.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.unshare.wait()
        for hierarchy in [Path("/sys/fs/cgroup"), *Path("/sys/fs/cgroup").iterdir()]:
            top = hierarchy / self.cgroup
            if top.is_dir():
                for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    d.rmdir()
                top.rmdir()
        self.log.close()
        os.unlink(self.log.name)


def bench_systemctl_restarts(cycles):
    """`systemctl restart` of a unit under a load of 4 clients from another network namespace,
    `cycles` times, in a real systemd: a bare gunicorn unit (bound to 0.0.0.0 itself), the
    SolvIT-style unit after a plain `install` (the held socket and systemd's fd store), and
    after `install --socket-unit`."""
    venv = Path(os.path.realpath(GUNICORN.parent.parent))
    binds = sorted({ROOT, venv, LAUNCHER.parent})
    binds = [b for b in binds if not any(b != o and b.is_relative_to(o) for o in binds)]
    sd = BootedSystemd(binds)
    client = f"glbench-sdc-{os.getpid()}"
    results = {}
    try:
        subprocess.run(["ip", "netns", "add", client], check=True)
        subprocess.run(["ip", "link", "add", "lan0", "netns", str(sd.pid), "type", "veth", "peer", "name", "lan1",
                        "netns", client], check=True)
        sd.run(["ip", "addr", "add", "198.18.0.1/24", "dev", "lan0"], check=True)
        sd.run(["ip", "link", "set", "lan0", "up"], check=True)
        for cmd in (["addr", "add", "198.18.0.2/24", "dev", "lan1"], ["link", "set", "lan1", "up"], ["link", "set", "lo", "up"]):
            subprocess.run(["ip", "-n", client, *cmd], check=True)
        sd.write("/opt/solvit/hello.py", (EXAMPLES / "hello.py").read_text())
        modes = {"bare unit": ("0.0.0.0", []), "plain install": ("127.0.0.1", ["install"]),
                 "install --socket-unit": ("127.0.0.1", ["install", "--socket-unit"])}
        for i, (mode, (host, install)) in enumerate(modes.items()):
            name, port = f"site{i}.service", 8401 + i
            sd.write(f"/etc/systemd/system/{name}", (
                "[Unit]\nDefaultDependencies=no\nStartLimitBurst=100\n[Service]\nWorkingDirectory=/opt/solvit\n"
                f"RuntimeDirectory=site{i}\nEnvironment=XDG_RUNTIME_DIR=/run/site{i}\n"
                f"ExecStart={GUNICORN} -w 2 -b {host}:{port} hello:app\nRestart=on-failure\nRestartSec=100ms\n"))
            sd.run(["systemctl", "daemon-reload"], check=True)
            sd.run(["systemctl", "start", name], check=True)
            if install:
                out = sd.run([str(LAUNCHER), *install, name])
                if out.returncode != 0:
                    raise RuntimeError(f"{mode}: {out.stdout}{out.stderr}")
            home = os.open("/proc/self/ns/net", os.O_RDONLY)
            fd = os.open(f"/run/netns/{client}", os.O_RDONLY)
            libc.setns(fd, CLONE_NEWNET)
            os.close(fd)
            try:
                load = LoadClients("198.18.0.1", port)  # its threads are born in the client's namespace
            finally:
                libc.setns(home, CLONE_NEWNET)
                os.close(home)
            load.wait_answered(20)
            closed = []
            for _ in range(cycles):
                before = len(load.refusals)
                sd.run(["systemctl", "restart", name], check=True)
                load.wait_answered(10)
                times = load.refusals[before:]
                closed.append((times[-1] - times[0]) * 1000 if times else 0.0)
            counts = load.stop()
            sd.run(["systemctl", "stop", name])
            results[mode] = {"counts": counts, "closed_ms": summary(closed), "closed_ms_each": [round(c, 1) for c in closed],
                             "exec_start": sd.prop(name, "ExecStart").split("argv[]=")[-1].split(" ;")[0]}
            log(f"systemctl restart, {mode}: {counts}")
    finally:
        subprocess.run(["ip", "netns", "del", client])
        sd.close()
    return results


# ---------------------------------------------------------------- 8. the firewall's cost

FIXTURES = ROOT / "tests" / "fixtures" / "firewall"


def generated_rules(n):
    """A big realistic ruleset: a ban list's worth of single-address drops (fail2ban-like),
    service allowances, and a policy accept; nothing in it is about port 8001, so the port is
    judged open (no rule needs naming)."""
    lines = ["table inet big {", "  chain input {", "    type filter hook input priority 0; policy accept;",
             "    ct state established,related accept", '    iifname "lo" accept']
    for i in range(n - 4):
        kind = i % 4
        a, b = (i // 250) % 250 + 1, i % 250 + 1
        if kind == 0:
            lines.append(f"    ip saddr 203.{a}.{b}.7 counter drop")
        elif kind == 1:
            lines.append(f"    ip6 saddr 2001:db8:{a:x}:{b:x}::7 counter drop")
        elif kind == 2:
            lines.append(f"    ip saddr 10.{a}.{b}.0/24 tcp dport {{ 22, {9000 + b} }} accept")
        else:
            lines.append(f'    iifname "eth{b}" udp dport {5000 + a} counter reject')
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def load_ruleset(kind, tmp):
    """Loads one of the bench's rulesets into the current namespace (an empty one is left
    empty): the recorded firewalld and ufw rulesets of tests/fixtures/firewall, or generated
    rules."""
    if kind == "none":
        return
    if kind == "firewalld":
        subprocess.run([which("nft"), "-f", str(FIXTURES / "firewalld_default" / "nft.txt")], check=True)
    elif kind == "ufw":
        for tool, name in (("iptables-nft-restore", "iptables-nft-save.txt"), ("ip6tables-nft-restore", "ip6tables-nft-save.txt")):
            with open(FIXTURES / "ufw_deny" / name) as fh:
                subprocess.run([which(tool)], stdin=fh, check=True)
    else:
        path = tmp / "big.nft"
        path.write_text(generated_rules(int(kind)))
        subprocess.run([which("nft"), "-f", str(path)], check=True)


def bench_firewall(args):
    rounds = int(args.get("rounds", 20))
    big = int(args.get("rules", 10000))
    rulesets = ["none", "ufw", "firewalld", str(big)]
    become_subreaper()
    results = {}
    with tempfile.TemporaryDirectory(prefix="glbench-") as tmp:
        tmp = Path(tmp)
        for kind in rulesets:
            with Netns(f"fw{kind[:5]}"):
                load_ruleset(kind, tmp)
                (tmp / f"xdg-{kind}").mkdir()
                served = subprocess.Popen([str(GUNICORN), "-b", "0.0.0.0:8001", *APP], cwd=EXAMPLES, env=candidate_env(tmp / f"xdg-{kind}"),
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                first_200(8001, time.monotonic())
                tools = {"check": [str(LAUNCHER), "check", "--port", "8001"]}
                if LAUNCHER_BEFORE.exists():
                    tools["check (before)"] = [str(LAUNCHER_BEFORE), "check", "--port", "8001"]
                tools["nft -j list ruleset"] = [which("nft"), "-j", "list", "ruleset"]
                tools["nft list ruleset"] = [which("nft"), "list", "ruleset"]
                if kind == "ufw":
                    tools["iptables-nft-save"] = [which("iptables-nft-save")]
                plain = candidate_env(tmp, {})
                codes = {name: spawn_timed(argv, plain)[1] for name, argv in tools.items()}
                verdict = subprocess.run(tools["check"] + ["--json"], capture_output=True, text=True, env=plain)
                firewall = json.loads(verdict.stdout).get("firewall") if verdict.stdout else None
                times, act = interleaved(tools, rounds, plain, seed=2)
                size = len(subprocess.run(tools["nft -j list ruleset"], capture_output=True).stdout)
                results[kind] = {
                    "exit_codes": codes, "argv": tools, "ms": {k: summary(v) for k, v in times.items()},
                    "managed_by": firewall and firewall.get("managed_by"), "read_from": firewall and firewall.get("read_from"),
                    "verdicts": firewall and [v["verdict"] for v in firewall.get("verdicts", [])],
                    "nft_json_bytes": size, "activity": act.report,
                }
                stop(served)
    save("firewall", {"rounds": rounds, "rules": big, "rulesets": results})


# ---------------------------------------------------------------- 9. many addresses


def add_addresses(n):
    """`n` more IPv4 addresses (10.77.x.y/32) on veth0 of the current namespace, in one batch."""
    batch = "".join(f"addr add 10.77.{i // 250}.{i % 250 + 1}/32 dev veth0\n" for i in range(n))
    subprocess.run([which("ip"), "-batch", "-"], input=batch.encode(), check=True)


def bench_addresses(args):
    """Verification time (gunicorn's bind, stamped by its hook, to READY=1) and the launcher's
    CPU until READY=1, on hosts with 10 to 2,000 addresses, under systemd's default soft
    limit of 1,024 descriptors; and `check`'s whole-process time on the same hosts."""
    rounds = int(args.get("rounds", 5))
    counts = [10, 100, 1000, 2000]
    become_subreaper()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # inherited by all we start
    results = {}
    port = 23000
    try:
        with tempfile.TemporaryDirectory(prefix="glbench-") as tmp:
            tmp = Path(tmp)
            for n in counts:
                with Netns(f"addr{n}"):
                    add_addresses(n - 2)  # loopback and veth0's 198.18.0.1 are two
                    verify, cpu, probes, checks, codes = [], [], set(), [], set()
                    with Activity() as act:
                        for r in range(rounds + 1):
                            port += 1
                            xdg = tmp / f"xdg-{port}"
                            xdg.mkdir()
                            stamp = tmp / f"listen-{port}"
                            nsock, path = notify_socket(tmp)
                            env = candidate_env(xdg, {"BENCH_LISTEN_FILE": str(stamp), "NOTIFY_SOCKET": path})
                            with open(tmp / f"launcher-{port}.log", "w") as logf:
                                proc = subprocess.Popen(supervised("launcher", port, ["-c", str(HOOKS)]), cwd=EXAMPLES,
                                                        env=env, stdout=logf, stderr=logf)
                                done = wait_ready_notify(nsock, proc, timeout=120.0)
                                own = process_cpu_ms(proc.pid)
                            nsock.close()
                            ms, code = spawn_timed([str(LAUNCHER), "check", "--port", str(port)], candidate_env(tmp, {}))
                            stop(proc)
                            listening = int(stamp.read_text().split()[0]) / 1e9
                            line = next((l for l in (tmp / f"launcher-{port}.log").read_text().splitlines() if "verified:" in l), "")
                            probes.add(line.split("HTTP 200 from ", 1)[1].split(" probes", 1)[0] if " probes" in line else "?")
                            codes.add(code)
                            if r >= 1:
                                verify.append((done - listening) * 1000)
                                cpu.append(own)
                                checks.append(ms)
                    results[str(n)] = {
                        "verify_ms": summary(verify), "launcher_cpu_ms": summary(cpu), "check_ms": summary(checks),
                        "probes_answered": sorted(probes), "check_exit_codes": sorted(codes), "activity": act.report,
                    }
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    save("addresses", {"rounds": rounds, "nofile_soft_limit": 1024, "hosts": results})


# ---------------------------------------------------------------- report


def version(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not installed"


def source():
    """Which launcher source the bench measures: `src/ at commit <short sha>`, with
    " (working tree modified)" when src/, Cargo.toml, Cargo.lock or .cargo/ differ from it."""
    git = ["git", "-C", str(ROOT)]
    try:
        sha = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock", ".cargo"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "src/ at commit unknown (no git)"
    return f"src/ at commit {sha}" + (" (working tree modified)" if dirty else "")


def linkage(path):
    """How `path` is linked, from its dynamic section's NEEDED entries (readelf -d)."""
    try:
        out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "linkage unknown"
    needed = [l.rsplit("[", 1)[1].rstrip("]") for l in out.splitlines() if "(NEEDED)" in l]
    return f"dynamic: {', '.join(needed)}" if needed else "static"


def binary(path):
    if not path.exists():
        return f"{path.relative_to(ROOT)} (not built)"
    return f"{path.relative_to(ROOT)} ({path.stat().st_size / 1024 / 1024:.1f} MiB, {linkage(path)})"


def before_revision(name="before"):
    try:
        return f", built from {(ROOT / 'benches' / name).read_text().split()[0][:7]}"
    except (OSError, IndexError):
        return ""


def install_copies():
    """Every launcher the benches run is a copy that `install -m 755` made in
    target/bench-installed/, as a package or an operator puts the program in place, not the
    file the linker wrote. The linker writes its output in small pieces, and the page cache
    keeps such a file in small pieces too: a program started from it faults more of itself in
    (the start bench's `launcher-as-linked` row measures that file beside the copy)."""
    global LAUNCHER, LAUNCHER_DYNAMIC, LAUNCHER_PREVIOUS, LAUNCHER_BEFORE

    def copy(built, kind):
        if not built.exists():
            return built
        installed = ROOT / "target" / "bench-installed" / kind / "gunicorn-launcher"
        installed.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["install", "-m", "755", str(built), str(installed)], check=True)
        return installed

    LAUNCHER = copy(LAUNCHER, "launcher")
    LAUNCHER_DYNAMIC = copy(LAUNCHER_DYNAMIC, "launcher-dynamic")
    LAUNCHER_PREVIOUS = copy(LAUNCHER_PREVIOUS, "launcher-previous")
    LAUNCHER_BEFORE = copy(LAUNCHER_BEFORE, "launcher-before")


def machine():
    """The machine and the programs compared, taken when a bench runs and saved with its
    figures (`report` renders them from the JSON)."""
    mem = next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    os_name = next((l.split("=", 1)[1].strip('"') for l in Path("/etc/os-release").read_text().splitlines() if l.startswith("PRETTY_NAME")), "?")
    return {
        "cpu": f"{os.cpu_count()} × {cpu}",
        "memory": f"{int(mem.split()[1]) // 1024} MiB",
        "kernel": platform.release(),
        "os": os_name,
        "python": platform.python_version(),
        "gunicorn": version([str(GUNICORN), "--version"]),
        "tini": version([shutil.which("tini") or "tini", "--version"]),
        "dumb-init": version([str(DUMB_INIT), "--version"]),
        "supervisord": version([str(SUPERVISORD), "--version"]),
        "hyperfine": version(["hyperfine", "--version"]),
        "lsof": version(["sh", "-c", "lsof -v 2>&1 | grep revision | head -1"]),
        "ss": version(["ss", "-V"]),
        "rustc": version(["rustc", "--version"]),
        "launcher": binary(LAUNCHER),
        "launcher-dynamic": binary(LAUNCHER_DYNAMIC),
        "launcher-before": binary(LAUNCHER_BEFORE) + before_revision(),
        "launcher-previous": binary(LAUNCHER_PREVIOUS) + before_revision("previous"),
        "nft": version(["nft", "--version"]),
        "launcher source": source(),
    }


def bench_all(args):
    for name in ("check", "firewall", "addresses", "startup", "idle", "ready", "signal", "restarts"):
        log(f"--- {name}")
        BENCHES[name](args)
    report(args)


def report(args):
    from report import readme_table, render  # benches/report.py

    data = {p.stem: json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))}
    # The machine as each bench saw it; read now only if no result carries it.
    now = None if any("machine" in v for v in data.values()) else machine()
    RESULTS.write_text(render(data, now))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "readme-table.md").write_text(readme_table(data))
    log(f"wrote {RESULTS}")


BENCHES = {"check": bench_check, "startup": bench_startup, "idle": bench_idle, "ready": bench_ready,
           "signal": bench_signal, "restarts": bench_restarts, "firewall": bench_firewall,
           "addresses": bench_addresses}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in (*BENCHES, "all", "report"):
        sys.exit(__doc__)
    if os.geteuid() != 0 and sys.argv[1] != "report":
        sys.exit("bench: needs root (it creates network namespaces)")
    args = dict(a.lstrip("-").split("=", 1) if "=" in a else (a.lstrip("-"), "1") for a in sys.argv[2:])
    sys.dont_write_bytecode = True  # no benches/__pycache__ from importing report.py
    sys.path.insert(0, str(Path(__file__).parent))
    if sys.argv[1] == "report":
        return report(args)
    global MACHINE
    install_copies()
    MACHINE = machine()  # the source and binaries as they are when the bench starts
    log(f"measuring {MACHINE['launcher source']}; launcher {MACHINE['launcher']}; launcher-dynamic {MACHINE['launcher-dynamic']}")
    try:
        bench_all(args) if sys.argv[1] == "all" else BENCHES[sys.argv[1]](args)
    finally:
        kill_everything_of_ours()


if __name__ == "__main__":
    main()
