"""Child processes for dev.py, the benchmarks and the tests: a private redis-server, Celery
workers and any other command, each started in its own session with its own log file and
stopped by its own pid (never by name), so nothing else on the machine is touched.

Standard library only: `dev.py` imports it before the virtual environment exists. The apps
never import it (tests/test_layout.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Every queue of the reference project, as the Procfile's worker consumes them.
QUEUES = "webhooks,webhooks.retry,webhooks.maintenance"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05
) -> bool:
    """Poll `predicate` every `interval` seconds for up to `timeout` seconds; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout):
            return True
    except OSError:
        return False


# --- Any command -------------------------------------------------------------------------------


def _process_tree(root: int) -> list[int]:
    """`root` and every descendant, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError):
            continue
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += frontier
    return tree


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError):
        return 0.0


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Process:
    """A command in its own session (so a group signal reaches its children and nothing else),
    its output in `log` (a temporary file unless given)."""

    def __init__(
        self,
        args: Sequence[str | os.PathLike[str]],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | str = ROOT,
        log: Path | None = None,
        prefix: str = "process-",
    ) -> None:
        self.args = list(args)
        self.env = env
        self.cwd = cwd
        self.log = log or Path(tempfile.mkstemp(prefix=prefix, suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: bytes | None = None, timeout: float = 30) -> Process:
        """Start it; with `ready`, wait up to `timeout` seconds for that text in the log.

        Raises RuntimeError with the log's tail when it exits or stays silent meanwhile.
        """
        with self.log.open("ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                self.args,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if ready is not None:
            if not wait_until(lambda: ready in self.log.read_bytes() or not self.alive(), timeout):
                raise RuntimeError(f"{self.args[0]} not ready:\n{self.output()}")
            if not self.alive():
                raise RuntimeError(f"{self.args[0]} exited:\n{self.output()}")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def output(self, chars: int = 5000) -> str:
        """The last `chars` characters of its log."""
        return self.log.read_text(errors="replace")[-chars:]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        """Its pid and its descendants' (a prefork pool's children)."""
        return _process_tree(self.proc.pid) if self.proc else []

    def children(self) -> list[int]:
        return self.pids()[1:]

    def cpu(self) -> float:
        """CPU seconds (user + system) used so far by it and its living descendants."""
        return sum(_cpu_seconds(pid) for pid in self.pids())

    def rss(self) -> float:
        """Resident memory of it and its descendants, in MB."""
        return sum(_rss_mb(pid) for pid in self.pids())

    def send(self, signum: int, *, group: bool = False) -> None:
        """Send `signum` to it, or to its whole session's group."""
        if self.alive():
            if group:
                os.killpg(self.pid, signum)
            else:
                os.kill(self.pid, signum)

    def kill(self) -> None:
        """kill -9 of its whole group, children included: no chance to hand anything back."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            self.wait(10)

    def wait(self, timeout: float) -> int | None:
        """Its exit code, waiting up to `timeout` seconds; None if it still runs."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(
        self, signum: int = signal.SIGTERM, *, group: bool = False, timeout: float = 20
    ) -> None:
        """Ask it to end with `signum`; after `timeout` seconds, kill -9 its group."""
        if self.alive():
            self.send(signum, group=group)
            if self.wait(timeout) is None:
                self.kill()


# --- Redis -----------------------------------------------------------------------------------


def _redis_path() -> str:
    return os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"


def redis_binary() -> str | None:
    """The redis-server to run: $REDIS_SERVER if set, else the one on PATH; None if missing."""
    path = _redis_path()
    return path if os.path.exists(path) else None


def redis_command(port: int, *extra: str) -> list[str]:
    """redis-server on 127.0.0.1:`port` without persistence: a restart loses every message,
    which is the case the fault tests cause. Raises RuntimeError when no binary is installed."""
    binary = redis_binary()
    if binary is None:
        raise RuntimeError(
            f"redis-server not found ({_redis_path()}); `python3 dev.py test` installs it."
        )
    return [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--maxmemory-policy", "noeviction", *extra,
    ]  # fmt: skip


class RedisServer:
    """A throwaway redis-server on a free (or the given) port, stopped with kill -9."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.logfile = Path(tempfile.mkstemp(prefix="redis-", suffix=".log")[1])
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """The running server's Popen (to SIGSTOP it, say); None when stopped."""
        return self.process.proc if self.process else None

    def start(self) -> RedisServer:
        """Start it and wait until it answers PING. Raises RuntimeError if it does not."""
        command = redis_command(self.port, "--logfile", str(self.logfile))
        self.process = Process(command, env=None, log=Path(os.devnull)).start()
        if not wait_until(self.ping, timeout=10):
            raise RuntimeError(f"redis-server did not start on port {self.port}")
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process:
            self.process.kill()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


# --- Celery workers --------------------------------------------------------------------------


def worker_command(
    pool: str,
    concurrency: int,
    queues: str = QUEUES,
    loglevel: str = "info",
    *,
    name: str,
    extra: Sequence[str] = (),
    python: str = sys.executable,
    heartbeat: bool = False,
) -> list[str]:
    """`celery worker` for the reference project, quiet on the cluster chatter (gossip, mingle,
    and heartbeats unless `heartbeat`) that a single node does not use."""
    quiet = ["--without-gossip", "--without-mingle"]
    if not heartbeat:
        quiet.insert(0, "--without-heartbeat")
    return [
        python, "-m", "celery", "-A", "webhooks_project", "worker",
        "-P", pool, "-c", str(concurrency), "-Q", queues, "-l", loglevel, *extra, *quiet,
        "-n", name,
    ]  # fmt: skip


class Worker(Process):
    """`celery -A webhooks_project worker` with a given pool and concurrency."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        pool: str = "threads",
        concurrency: int = 4,
        queues: str = QUEUES,
        loglevel: str = "info",
        name: str = "worker",
        extra: Sequence[str] = (),
    ) -> None:
        self.pool, self.concurrency, self.queues = pool, concurrency, queues
        node = f"{name}-{os.getpid()}-{free_port()}@%h"
        args = worker_command(pool, concurrency, queues, loglevel, name=node, extra=extra)
        super().__init__(args, env=env, prefix=f"{name}-")

    def start(self, ready: bytes | None = b" ready.", timeout: float = 30) -> Worker:
        """Start it and (unless `ready` is None) wait for Celery's " ready." line."""
        super().start(ready, timeout)
        return self
