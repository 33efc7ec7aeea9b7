"""The runtime refuses to start where another platform already answers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services.errors import StartupError
from services.runtime import Platform
from services.settings import Settings


def test_taken_api_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(api_port=port, data_dir=tmp_path,
                            kafka_bootstrap="127.0.0.1:9", redis_url="redis://127.0.0.1:9")  # fmt: skip
        platform = Platform(settings)

        with pytest.raises(StartupError, match=f"port {port} .* is in use"):
            platform.start()

    assert platform.children == []
