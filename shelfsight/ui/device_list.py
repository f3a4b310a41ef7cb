"""`shelfsight devices`: what a user can pass to --camera, --mic and --speaker."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from shelfsight.errors import UserError


def print_devices(console: Console | None = None) -> None:
    """Cameras first, then sound devices; a missing PortAudio is said, not raised."""
    from shelfsight.media.camera import list_cameras
    from shelfsight.media.open_audio import list_audio_devices

    console = console or Console()
    cameras = Table(title="Cameras (--camera NAME or INDEX)", title_justify="left")
    for column in ("index", "name", "resolution", "note"):
        cameras.add_column(column)
    found = list_cameras()
    for cam in found:
        notes = []
        if cam.is_continuity:
            notes.append("Continuity Camera: --camera iphone")
        if cam.index_is_guess:
            notes.append("index order guessed")
        size = f"{cam.resolution[0]}x{cam.resolution[1]}" if cam.resolution else ""
        cameras.add_row(str(cam.index), cam.name, size, ", ".join(notes))
    console.print(cameras if found else "No cameras found (streams and video files still work).")

    try:
        audio = list_audio_devices()
    except UserError as exc:
        console.print(f"Sound devices: {exc}")
        return
    for kind, title in (("in", "Microphones (--mic)"), ("out", "Speakers (--speaker)")):
        table = Table(title=title, title_justify="left")
        for column in ("index", "name", "channels", "default rate", "default"):
            table.add_column(column)
        rows = [d for d in audio if d.kind == kind]
        for dev in rows:
            table.add_row(
                str(dev.index),
                dev.name,
                str(dev.channels),
                f"{dev.default_rate_hz:.0f} Hz",
                "yes" if dev.is_default else "",
            )
        console.print(table if rows else f"{title}: none found (WAV files still work).")
