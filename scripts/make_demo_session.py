"""Re-create the bundled demo session (shelfsight/assets/demo-session) by really recording one.

A run of `shelfsight run` against the local stand-in endpoint, with the synthetic shelf video as
camera, the bundled spoken question as mic and the bundled spoken answer as the scripted reply.
Usage: .venv/bin/python -m scripts.make_demo_session
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

from shelfsight.standin import ScriptedAnswer, StandIn, StandInConfig, client_env
from tests.support.scene import write_shelf_video

ASSETS = Path(__file__).resolve().parent.parent / "shelfsight" / "assets"
QUESTION = "Where is the gluten-free bread?"
ANSWER = "Third shelf from the top, right end. It's a green bag with a yellow label."


def main() -> None:
    with wave.open(str(ASSETS / "answer.wav"), "rb") as w:
        answer_pcm = w.readframes(w.getnframes())
    target = ASSETS / "demo-session"
    shutil.rmtree(target, ignore_errors=True)
    config = StandInConfig(answers=(ScriptedAnswer(QUESTION, ANSWER, answer_pcm),))
    with tempfile.TemporaryDirectory() as tmp, StandIn.start_in_thread(config) as server:
        video = write_shelf_video(Path(tmp) / "shelf.avi", seconds=4.0, size=(1280, 720))
        env = {**os.environ, **client_env(server.base_url, server.ca_pem_path, "demo-recording")}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "shelfsight",
                "run",
                "--plain",
                "--camera",
                str(video),
                "--mic",
                str(ASSETS / "question.wav"),
                "--speaker",
                str(Path(tmp) / "out.wav"),
                "--max-side",
                "640",
                "--jpeg-quality",
                "70",
                "--record",
                str(target),
            ],
            env=env,
            check=True,
        )
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
