"""Shared fixtures: a stand-in Live endpoint, a shelf video, and a clean environment.

The environment is scrubbed of any real key or endpoint so no test can reach Google by
accident; tests that need a key set a fake one pointing at the stand-in.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shelfsight.settings import DEFAULT_MODEL
from shelfsight.standin import StandIn, StandInConfig, StandInThread, client_env
from tests.support.scene import write_shelf_video

ASSETS = Path(__file__).resolve().parent.parent / "shelfsight" / "assets"
TEST_KEY = "test-key-not-secret-0123456789"


# A suite started in the background by a non-interactive shell (`cmd &`) inherits SIGINT
# ignored, and so would every shelfsight it starts: the Ctrl-C tests need the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("GEMINI_", "GOOGLE_", "SHELFSIGHT_")) or name == "SSL_CERT_FILE":
            monkeypatch.delenv(name)
    for name in ("LC_ALL", "LC_MESSAGES"):  # English, whatever the developer's locale
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    empty = tmp_path / "empty-config.toml"  # never the user's own config
    empty.write_text("")
    monkeypatch.setenv("SHELFSIGHT_CONFIG", str(empty))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the demo's answer WAV
    monkeypatch.chdir(tmp_path)  # relative output paths land in the test's own folder


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (`pytest.mark.anyio`) run on asyncio, as shelfsight does."""
    return "asyncio"


@pytest.fixture
async def tasks() -> AsyncIterator[list[asyncio.Task[Any]]]:
    """Tasks a test starts; cancelled and awaited when it ends, pass or fail."""
    running: list[asyncio.Task[Any]] = []
    yield running
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


@pytest.fixture(scope="session")
def shelf_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of 30 fps synthetic shelf, each frame numbered (see tests.support.scene)."""
    return write_shelf_video(tmp_path_factory.mktemp("video") / "shelf.avi", seconds=3.0)


@pytest.fixture
def standin() -> Iterator[StandInThread]:
    config = StandInConfig(api_keys=frozenset({TEST_KEY}), models=frozenset({DEFAULT_MODEL}))
    with StandIn.start_in_thread(config) as server:
        yield server


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 60.0, cwd: Path | None = None
) -> CliResult:
    """Run `python -m shelfsight ARGS` as a user would, in a child process."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "shelfsight", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def start_answered_run(
    server: StandInThread, tmp_path: Path, *args: str, stdout: int = subprocess.PIPE
) -> subprocess.Popen[str]:
    """`shelfsight run` with a question then 30 s of silence as mic, in a child process,
    returned once the endpoint has answered the question (for tests that then stop it)."""
    from shelfsight.media.wav import load_mic_pcm, write_wav

    mic = write_wav(
        tmp_path / "long.wav", load_mic_pcm(ASSETS / "question.wav") + bytes(32000 * 30)
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "shelfsight", "run", "--mic", str(mic), *args],
        env={**os.environ, **standin_env(server)},
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stdout,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not server.server.turns_completed and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.server.turns_completed:
        proc.kill()
        raise AssertionError("the question was never answered")
    return proc


def standin_env(server: StandInThread, key: str = TEST_KEY) -> dict[str, str]:
    """What points the real SDK at the stand-in: a key, the base URL, and the CA to trust."""
    return client_env(server.base_url, server.ca_pem_path, key)


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    """Exit 2, one line on stderr naming every fragment ("a|b": either), no traceback."""
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:  # "a|b": either will do (e.g. with or without PortAudio)
        assert any(alt.lower() in lines[0].lower() for alt in fragment.split("|")), lines[0]
