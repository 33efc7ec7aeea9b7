"""Start and stop the whole platform: broker, Redis, worker, graph service, API."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType

import httpx
from redis.asyncio import Redis
from tqdm import tqdm

from schemas.envelope import Envelope
from services.api_support import ACCEPTED
from services.embedded import ChildProcess, EmbeddedBroker, EmbeddedRedis, free_port
from services.errors import StartupError
from services.kafka import ensure_topics
from services.producer import Journal, Publisher
from services.settings import Settings
from streams.readmodels import Keys

logger = logging.getLogger(__name__)

JOURNAL_FILE = "journal.ndjson"
RUNTIME_FILE = "runtime.json"
READY_TIMEOUT_S = 90.0
MAX_RESTARTS_PER_MINUTE = 3
REPLAY_BATCH = 1000


class Platform:
    """The process tree of one platform, started in order and stopped in reverse."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.broker: EmbeddedBroker | None = None
        self.redis: EmbeddedRedis | None = None
        self.children: list[ChildProcess] = []
        self.bootstrap = settings.kafka_bootstrap or ""
        self.redis_url = settings.redis_url or ""
        self.api_port = settings.api_port or free_port()
        self._restarts: dict[str, list[float]] = {}

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.api_port}"

    @property
    def journal_path(self) -> Path | None:
        return self.data_dir / JOURNAL_FILE if self.broker is not None else None

    def start(self) -> None:
        """Start every part and wait until the API is ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._check_api_port()
        try:
            self._start_infrastructure()
            asyncio.run(self._prepare_log())
            for role in ("worker", "graph", "api"):
                self._spawn(role)
            self._wait_ready()
            self._write_runtime_info()
        except BaseException:
            self.stop()
            raise
        logger.info(
            "platform ready: API at %s (docs at %s/docs)", self.api_url, self.api_url
        )

    def _check_api_port(self) -> None:
        """Refuse to start when the API's port is taken: another platform (or
        the demo) would answer in its place."""
        host = self.settings.api_host
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, self.api_port))
            except OSError as err:
                raise StartupError(
                    f"port {self.api_port} on {host} is in use ({err.strerror}): is "
                    "another platform or the demo still running? Stop it, or choose "
                    "another port with ALLIANCE_API_PORT"
                ) from err

    def _start_infrastructure(self) -> None:
        if not self.bootstrap:
            self.broker = EmbeddedBroker(self.data_dir)
            self.broker.start()
            self.bootstrap = self.broker.bootstrap
        if not self.redis_url:
            self.redis = EmbeddedRedis(self.data_dir)
            self.redis.start()
            self.redis_url = self.redis.url
        logger.info("broker at %s, Redis at %s", self.bootstrap, self.redis_url)

    async def _prepare_log(self) -> None:
        s = self.settings
        await ensure_topics(self.bootstrap, s.topic_prefix, s.partitions)
        if self.journal_path is not None and self.journal_path.exists():
            await replay_journal(self.journal_path, self.bootstrap, self.redis_url, s)

    def _child_env(self, role: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            ALLIANCE_KAFKA_BOOTSTRAP=self.bootstrap,
            ALLIANCE_REDIS_URL=self.redis_url,
            ALLIANCE_TOPIC_PREFIX=self.settings.topic_prefix,
            ALLIANCE_REDIS_PREFIX=self.settings.redis_prefix,
            ALLIANCE_PARTITIONS=str(self.settings.partitions),
            ALLIANCE_API_HOST=self.settings.api_host,
            ALLIANCE_API_PORT=str(self.api_port),
            ALLIANCE_DATA_DIR=str(self.data_dir),
            ALLIANCE_LOG_LEVEL=self.settings.log_level,
            ALLIANCE_MATCH_EXPIRY_CHECK_S=str(self.settings.match_expiry_check_s),
        )
        env.pop("ALLIANCE_JOURNAL_PATH", None)
        if role == "api" and self.journal_path is not None:
            env["ALLIANCE_JOURNAL_PATH"] = str(self.journal_path)
        return env

    def add_worker(self) -> None:
        """Start one more stream worker: the consumer group shares the partitions
        out again (a rebalance) and each worker then projects its own share."""
        workers = sum(1 for c in self.children if c.name.startswith("worker"))
        self._spawn("worker", name=f"worker-{workers + 1}")

    def _spawn(self, role: str, *, name: str | None = None) -> None:
        name = name or role
        child = ChildProcess(name, self.data_dir / "logs" / f"{name}.log")
        argv = [sys.executable, "-m", "services.cli", "serve", role]
        child.spawn(argv, self._child_env(role))
        self.children.append(child)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.supervise()
            try:
                if httpx.get(f"{self.api_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise StartupError(f"the API did not become ready at {self.api_url}")

    def _write_runtime_info(self) -> None:
        """Tell other commands (imports, dead letters) where this platform runs."""
        info = {
            "api_url": self.api_url,
            "bootstrap": self.bootstrap,
            "redis_url": self.redis_url,
            "pid": os.getpid(),
        }
        (self.data_dir / RUNTIME_FILE).write_text(json.dumps(info), "utf-8")

    def check_children(self) -> None:
        """Raise if a child process has exited (used while starting)."""
        for child in [*self.children, self.broker, self.redis]:
            if child is not None and child.exited():
                raise StartupError(
                    f"the {child.name} process exited; see {child.log_path}"
                )

    def supervise(self) -> None:
        """Restart a worker, graph service or API that died; give up on a dead
        embedded broker or Redis (their data is in memory) or a crash loop."""
        for service in (self.broker, self.redis):
            if service is not None and service.exited():
                raise StartupError(
                    f"the {service.name} stopped; see {service.log_path}"
                )
        now = time.monotonic()
        for child in self.children:
            if not child.exited():
                continue
            recent = [t for t in self._restarts.get(child.name, []) if now - t < 60]
            if len(recent) >= MAX_RESTARTS_PER_MINUTE:
                raise StartupError(
                    f"the {child.name} keeps failing; see {child.log_path}"
                )
            logger.warning(
                "the %s exited; restarting it (log in %s)", child.name, child.log_path
            )
            self._restarts[child.name] = [*recent, now]
            child.restart()

    def stop(self) -> None:
        """Stop the children, then Redis and the broker."""
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        for service in (self.redis, self.broker):
            if service is not None:
                service.stop()
        (self.data_dir / RUNTIME_FILE).unlink(missing_ok=True)

    def serve_forever(self) -> None:
        """Serve until Ctrl-C or SIGTERM (restarting children that die), then stop."""
        stopping = False

        def _on_signal(signum: int, _: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        try:
            while not stopping:
                self.supervise()
                time.sleep(0.5)
        finally:
            logger.info("stopping the platform")
            self.stop()


def running_platform(data_dir: Path) -> dict[str, str] | None:
    """Return where the platform started from ``data_dir`` runs, if it does."""
    path = data_dir / RUNTIME_FILE
    if not path.exists():
        return None
    info: dict[str, str] = json.loads(path.read_text("utf-8"))
    return info


async def replay_journal(
    path: Path, bootstrap: str, redis_url: str, s: Settings
) -> int:
    """Send the journal's events to a fresh broker, in order; return how many."""
    publisher = Publisher(bootstrap, s.topic_prefix)
    redis = Redis.from_url(redis_url)
    keys = Keys(s.redis_prefix)
    await publisher.start()
    count = 0
    try:
        batch: list[Envelope] = []
        with tqdm(desc="Replaying accepted events", unit=" events", leave=False) as bar:
            for env in Journal.read(path):
                batch.append(env)
                if len(batch) >= REPLAY_BATCH:
                    count += await _replay_batch(publisher, redis, keys, batch, bar)
            count += await _replay_batch(publisher, redis, keys, batch, bar)
    finally:
        await publisher.stop()
        await redis.aclose()
    logger.info("replayed %d accepted events from %s", count, path)
    return count


async def _replay_batch(
    publisher: Publisher, redis: Redis, keys: Keys, batch: list[Envelope], bar: tqdm
) -> int:
    """Send a batch and mark its ids as accepted, so that re-posts stay no-ops."""
    if not batch:
        return 0
    await publisher.send_only(batch)
    await redis.mset({keys.idempotency(e.event_id): ACCEPTED for e in batch})
    n = len(batch)
    bar.update(n)
    batch.clear()
    return n
