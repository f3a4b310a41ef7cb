"""A session in the user's language: a German screen-reader user reads and hears German from
shelfsight itself, the status voice is the platform's voice for the language, and a language
without a voice is spoken in English, said once."""

from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path

import pytest

from shelfsight.core.phrases import load, speaking
from shelfsight.media.camera import CameraStatus
from shelfsight.media.tts import Engine, voice_for
from shelfsight.media.wav import write_wav
from shelfsight.session.announcer import make_announcer
from shelfsight.session.recording import NullRecorder
from shelfsight.settings import load_settings
from tests.support.terminal import Terminal

# `say -v '?'` on macOS 15, cut down (one voice's name has spaces and brackets).
SAY_VOICES = """\
Alice               it_IT    # Ciao! Mi chiamo Alice.
Anna                de_DE    # Hallo! Ich heiße Anna.
Daniel              en_GB    # Hello! My name is Daniel.
Eddy (German (Germany)) de_DE    # Hallo! Ich heiße Eddy.
Joana               pt_PT    # Olá! Chamo-me Joana.
Luciana             pt_BR    # Olá! Meu nome é Luciana.
Nora                nb_NO    # Hei! Jeg heter Nora.
Samantha            en_US    # Hello! My name is Samantha.
"""
# `espeak-ng --voices=pt` (espeak-ng 1.51): MBROLA voices need mbrola, which is not installed.
ESPEAK_PT = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  pt              --/M      Portuguese_(Portugal) roa/pt               (pt-pt 5)
 5  pt-br           --/M      Portuguese_(Brazil) roa/pt-BR            (pt 6)
 7  pt-pt           --/F      portugal-mbrola-1  mb/mb-pt1            (pt 7)
"""
ESPEAK_ES = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 3  es-es           --/F      spanish-mbrola-3   mb/mb-es3            (es 3)
 5  es              --/M      Spanish_(Spain)    roa/es
"""


def test_the_voice_is_the_platforms_voice_for_the_language_and_region() -> None:
    say = Engine("say", "/usr/bin/say")
    listed: list[list[str]] = []

    def listing(cmd: list[str]) -> str:
        listed.append(cmd)
        return SAY_VOICES

    picks = {tag: voice_for(say, tag, listing) for tag in ("de-DE", "pt-BR", "pt-PT", "no", "pl")}
    assert picks == {
        "de-DE": "Anna",
        "pt-BR": "Luciana",
        "pt-PT": "Joana",
        "no": "Nora",
        "pl": None,
    }
    assert listed[0] == ["/usr/bin/say", "-v", "?"]
    espeak = Engine("espeak-ng", "/usr/bin/espeak-ng")
    assert voice_for(espeak, "pt-BR", lambda cmd: ESPEAK_PT) == "pt-br"
    assert voice_for(espeak, "es-ES", lambda cmd: ESPEAK_ES) == "es", "not an MBROLA voice"
    pico = Engine("pico2wave", "/usr/bin/pico2wave")
    assert [voice_for(pico, t) for t in ("de-AT", "en-GB", "sv-SE")] == ["de-DE", "en-GB", None]


def test_a_language_without_a_voice_is_spoken_in_english_and_said_once() -> None:
    """pico2wave has no Dutch: the screen says so in Dutch, the voice says it in English,
    once, and then speaks its statuses in English."""
    shown: list[str] = []
    settings = load_settings({"language": "nl-NL", "cues": False}, environ={})  # speech alone
    with speaking("nl-NL"):
        announcer = make_announcer(
            settings, None, NullRecorder(), shown.append,  # type: ignore[arg-type]
            find=lambda: Engine("pico2wave", "/nonexistent/pico2wave"),
        )  # fmt: skip
        assert announcer is not None
        announcer.camera(CameraStatus("phone", stalled=True, outage_s=0.0))
    assert shown == [
        "Er is op deze computer geen stem voor Nederlands (nl-NL): gesproken meldingen zijn "
        "in het Engels."
    ]
    said = [text for text, _, _ in announcer._w.requests]
    assert said == [
        "There is no voice for Nederlands (nl-NL) on this computer: spoken messages are in "
        "English.",
        "The camera stopped. Check the phone's camera.",
    ]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (scripts/setup)")
def test_a_german_screen_reader_session_reads_and_speaks_german(tmp_path: Path) -> None:
    """`run --screen-reader --language de-DE` on a terminal: every line shelfsight prints is
    German, and the status voice is espeak-ng's German one (a wrapper on PATH logs how it is
    run). A mic that stays digitally silent makes shelfsight say so, aloud and on screen."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "espeak.log"
    wrapper = bin_dir / "espeak-ng"
    wrapper.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {shutil.which("espeak-ng")} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    mic = write_wav(tmp_path / "silence.wav", bytes(2 * 16000 * 20))  # 20 s of digital silence
    args = ["run", "--offline", "--screen-reader", "--language", "de-DE", "--camera", "none"]
    args += ["--mic", str(mic), "--speaker", str(tmp_path / "out.wav")]
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SHELFSIGHT_SILENT_MIC_S": "1"}
    term = Terminal(args, env, cols=100)
    german = load("de")
    mic_silent = german.text("spoken_mic_silent")
    try:
        term.wait_for(mic_silent)
        term.press("wo ist der Reis?\r")
        term.wait_for(german.text("you_asked", text="wo ist der Reis?"))
        assert log.exists(), "spoken status rendered by the espeak-ng on PATH"
        term.press("q")
        assert term.close() == 0
    finally:
        term.proc.kill()
    screen = term.screen.decode()
    lines = [line.strip() for line in screen.replace("\r", "").splitlines() if line.strip()]
    for line in (
        german.text("offline_banner").split(". ")[0] + ".",
        "Sprache: Deutsch (de-DE)",
        german.text("connecting"),
        german.text("ready"),
        mic_silent,
        "Sie haben gefragt: wo ist der Reis?",
    ):
        assert line in lines, (line, lines)
    assert any(line.startswith("Tasten: tippen + Enter: schriftlich fragen") for line in lines)
    assert any(line.startswith("Sitzung: 1 Verbindung, ") for line in lines), lines
    english = english_fragments()
    assert not [f for f in english if f in screen], [f for f in english if f in screen]
    renders = log.read_text().splitlines()
    assert "--voices=de" in renders, renders
    spoken = [r for r in renders if "--stdout" in r]
    assert spoken and all(r.startswith("-v de ") for r in spoken), spoken
    assert any(mic_silent in r for r in spoken), spoken


def english_fragments() -> set[str]:
    """The words of every English sentence that a German session would have translated:
    each run of text between placeholders, of 12 characters or more."""
    english, german = load("en").entries, load("de").entries
    found = set()
    for key, entry in english.items():
        if key == "no_catalogue":  # shown only where there is no catalogue
            continue
        for text in [entry] if isinstance(entry, str) else entry.values():
            for piece in re.split(r"\{[^}]*\}", text):
                if len(piece.strip()) >= 12 and piece.strip() not in str(german[key]):
                    found.add(piece.strip())
    return found
