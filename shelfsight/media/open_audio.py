"""Turn a --mic/--speaker value into a source or sink: a WAV path, or a sound device."""

from __future__ import annotations

import os
from pathlib import Path

from shelfsight.errors import UserError
from shelfsight.media.mic import MicSource, WavMic
from shelfsight.media.sound_devices import AudioDeviceInfo, DeviceMic, DeviceSpeaker, list_devices
from shelfsight.media.speaker import Overlay, PlayedCallback, SpeakerSink, WavSpeaker


def is_wav_spec(spec: str) -> bool:
    """A --mic/--speaker value names a file if it ends in .wav or looks like a path."""
    return spec.lower().endswith(".wav") or os.sep in spec or "/" in spec or Path(spec).is_file()


def _refuse_folder(spec: str, role: str, expected: str) -> None:
    if spec not in ("", "default") and Path(spec).expanduser().is_dir():
        raise UserError(
            f"--{role} {spec} is a folder: give {expected}, `default`, or a {role} device "
            f"name or index (see `shelfsight devices`)."
        )


def open_mic(spec: str) -> MicSource:
    """`default`, a device name substring or index, or a WAV path; the device is found now."""
    _refuse_folder(spec, "mic", "a WAV file to stream")
    if is_wav_spec(spec):
        return WavMic(Path(spec).expanduser())
    return DeviceMic.find(spec)


def open_speaker(
    spec: str, on_played: PlayedCallback | None = None, overlay: Overlay | None = None
) -> SpeakerSink:
    """`default`, a device name substring or index, or a WAV path to write; `overlay` is
    mixed over the answer (a device then opens in stereo, a WAV file gets the downmix)."""
    _refuse_folder(spec, "speaker", f"a WAV file to write, e.g. {Path(spec) / 'answer.wav'}")
    if is_wav_spec(spec):
        return WavSpeaker(Path(spec).expanduser(), on_played, overlay)
    return DeviceSpeaker.find(spec, on_played, overlay)


def list_audio_devices() -> list[AudioDeviceInfo]:
    """Every input and output device (a duplex device appears once per kind); needs PortAudio."""
    return list_devices()
