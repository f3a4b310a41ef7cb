"""libasound's error messages into the log, never onto the terminal.

Through PulseAudio/PipeWire's ALSA plugin libasound prints "ALSA lib pcm.c:...
(snd_pcm_recover) underrun occurred" and the like to stderr, tearing up the live view. It
offers one hook, `snd_lib_error_set_handler`; installed before PortAudio initialises (that is,
before `import sounddevice`), every such line goes to this module's logger at DEBUG instead.
Without libasound (macOS, Windows, no ALSA) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# void handler(const char *file, int line, const char *function, int err, const char *fmt, ...)
# The variadic arguments are not read: the format string and place are enough for a log line.
_Handler = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)
_installed: object | None = None  # keeps the C callback alive for the life of the process
messages = 0  # lines libasound would have printed


def _on_alsa_error(
    file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None
) -> None:
    """libasound's thread (often PortAudio's callback thread): count and log, nothing else."""
    global messages
    messages += 1

    def text(b: bytes | None) -> str:
        return (b or b"?").decode(errors="replace")

    log.debug("ALSA lib %s:%d:(%s) %s (err %d)", text(file), line, text(function), text(fmt), err)


def route_alsa_errors_to_log() -> bool:
    """Install the handler once; True if libasound is present and now logs instead of printing."""
    global _installed
    if _installed is not None:
        return True
    name = ctypes.util.find_library("asound")
    if name is None:
        return False
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return False
    handler = _Handler(_on_alsa_error)
    lib.snd_lib_error_set_handler(handler)
    _installed = handler
    return True
