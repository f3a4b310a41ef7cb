"""Installing shelfsight the way Python tools install: a built wheel, in a fresh venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import wave
import zipfile
from pathlib import Path

from shelfsight.core.phrases import LANGUAGES
from tests.conftest import ASSETS

REPO = Path(__file__).resolve().parent.parent


def wav_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def build_wheel(out: Path) -> Path:
    """Build from a copy of the sources, so no build/ left in the clone leaks into the wheel."""
    src = out / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "shelfsight",
        src / "shelfsight",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        cwd=out,
    )
    (wheel,) = out.glob("shelfsight-*.whl")
    return wheel


def test_the_built_wheel_installs_into_a_fresh_venv_and_its_demo_answers(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "shelfsight/assets/demo-session/manifest.json" in names
    assert {f"shelfsight/i18n/{code}.toml" for code in LANGUAGES} <= set(names), "every language"
    assert "shelfsight/assets/demo-session/frames/000001.jpg" in names

    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)
    fresh_python = fresh / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [fresh_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # The heavy dependencies come from the dev venv through a path line (appended after the
    # fresh venv's own site-packages, whose .pth files alone are processed): the editable
    # install's finder there is never run.
    (purelib / "zz-dev-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(fresh_python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run(
        [fresh_python, "-c", "import shelfsight; print(shelfsight.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    ).stdout.strip()
    assert Path(where).is_relative_to(fresh), where

    out = tmp_path / "answer.wav"
    result = subprocess.run(
        [fresh / "bin" / "shelfsight", "demo", "--plain", "--speaker", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert wav_pcm(ASSETS / "demo-session" / "answer.wav") in wav_pcm(out)
