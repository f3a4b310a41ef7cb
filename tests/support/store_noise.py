"""Store-noise test-set generator (pure numpy; espeak-ng optional for speech).

All signals are 16 kHz mono float32 in [-1, 1].

    babble(seconds, n_voices=6)          several voices talking at once (+ room reverb)
    music(seconds)                       chords with rhythm, bass, kick, hi-hat
    chime_announcement(seconds)          chime tones, then speech through a "PA" band-pass
    trolley(seconds)                     rattling wheels: filtered noise bursts + rumble
    store_ambience(seconds)              weighted mix of all of the above
    tonal(kind, seconds, level)          PA chimes, checkout scanners, ringtones or door alarms
                                         (TONE_EVENTS), or the ones that fool the voice detector
                                         (HARD_EVENTS), one every 3-10 s, up to the user's level
    sounds_over(kind, spans, n, level)   one of them under each of the user's utterances
    user_speech(seconds)                 close-talk user utterances with pauses (+ labels)
    mix_at_snr(speech, noise, snr_db)    speech over noise at a given SNR (+ frame labels)

Levels are RMS dBFS (full scale sine = -3 dBFS; a full-scale square = 0 dBFS).
If espeak-ng is not installed, a crude formant synthesiser is used instead.

Used by tests/test_speech.py and bench/vad.py; generated in code, nothing downloaded.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass

import numpy as np

SR = 16000
FRAME = 320  # 20 ms @ 16 kHz

# --------------------------------------------------------------------------- utils


def dbfs(x: np.ndarray) -> float:
    """RMS level in dBFS."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return -120.0
    return float(10 * np.log10(np.mean(x * x) + 1e-12))


def set_level(x: np.ndarray, level_dbfs: float) -> np.ndarray:
    return (x * 10 ** ((level_dbfs - dbfs(x)) / 20)).astype(np.float32)


def frame_dbfs(x: np.ndarray, frame: int = FRAME) -> np.ndarray:
    n = len(x) // frame
    f = np.asarray(x[: n * frame], dtype=np.float64).reshape(n, frame)
    return 10 * np.log10(np.mean(f * f, axis=1) + 1e-12)


def to_pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()


def from_pcm16(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<i2").astype(np.float32) / 32768.0


def write_wav(path: str, x: np.ndarray, sr: int = SR) -> None:
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(to_pcm16(x))


def read_wav(path: str) -> tuple[np.ndarray, int]:
    with wave.open(path, "rb") as w:
        sr, n, ch = w.getframerate(), w.getnframes(), w.getnchannels()
        raw = w.readframes(n)
    x = from_pcm16(raw)
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    return x, sr


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """FFT resampling (offline, whole signal). Good enough for test material."""
    if sr_in == sr_out:
        return x.astype(np.float32)
    n_out = int(round(len(x) * sr_out / sr_in))
    X = np.fft.rfft(x)
    n_bins = n_out // 2 + 1
    Y = np.zeros(n_bins, dtype=complex)
    k = min(n_bins, len(X))
    Y[:k] = X[:k]
    # soft roll-off over the top 5 % to avoid ringing at the new Nyquist
    taper = max(1, k // 20)
    Y[k - taper : k] *= np.linspace(1, 0, taper)
    return (np.fft.irfft(Y, n_out) * (n_out / len(x))).astype(np.float32)


def fft_filter(
    x: np.ndarray, lo: float | None = None, hi: float | None = None, order: int = 4, sr: int = SR
) -> np.ndarray:
    """Zero-phase Butterworth-magnitude band-pass in the frequency domain."""
    n = len(x)
    f = np.fft.rfftfreq(n, 1 / sr)
    h = np.ones_like(f)
    if hi is not None:
        h /= np.sqrt(1 + (f / hi) ** (2 * order))
    if lo is not None:
        with np.errstate(divide="ignore"):
            h /= np.sqrt(1 + (lo / np.maximum(f, 1e-6)) ** (2 * order))
    return np.fft.irfft(np.fft.rfft(x) * h, n).astype(np.float32)


def fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = len(x) + len(h) - 1
    nfft = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(h, nfft), nfft)[: len(x)]
    return y.astype(np.float32)


def reverb(
    x: np.ndarray, rt60: float = 0.6, wet: float = 0.5, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Exponentially decaying noise impulse response (diffuse room)."""
    rng = rng or np.random.default_rng(0)
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir = fft_filter(ir.astype(np.float32), lo=100, hi=5000, order=2)
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    ir[0] = 0.0
    y = (1 - wet) * x + wet * fft_convolve(x, ir)
    return y.astype(np.float32)


def _place(out: np.ndarray, sig: np.ndarray, start: int) -> None:
    if start >= len(out):
        return
    end = min(len(out), start + len(sig))
    out[start:end] += sig[: end - start]


# --------------------------------------------------------------------------- speech

PHRASES = [
    "Excuse me, where can I find the gluten free pasta?",
    "Do you have this in a bigger size?",
    "I think the milk is in aisle seven, next to the cheese.",
    "We need eggs, bread, butter and some apples for the weekend.",
    "Is this on offer today or was that last week?",
    "Can you check if there are more of these in the back?",
    "No, the other one, the green bottle on the top shelf.",
    "How much is the coffee when you buy two packs?",
    "Mum, can we get the chocolate cereal, please?",
    "I'll meet you at the checkout in five minutes.",
    "They moved the rice again, it used to be over there.",
    "Have you seen the price of tomatoes this month?",
    "Which of these has less sugar in it?",
    "Let's just take the cheaper one, it is the same thing.",
    "Sorry, could you tell me where the toilets are?",
    "I forgot the shopping list in the car, typical.",
]
FOREIGN = {
    "de": "Entschuldigung, wo finde ich die Nudeln und das Olivenöl?",
    "fr": "Est-ce que vous avez encore du pain complet ce matin?",
    "es": "Perdone, ¿dónde están las galletas sin azúcar?",
    "it": "Scusi, dove posso trovare il caffè e lo zucchero?",
    "nl": "Waar liggen de appels en de peren, alstublieft?",
}
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc"]
VARIANTS = [
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "Andy",
    "Annie",
    "Linda",
    "Michael",
    "Steph",
    "david",
    "robert",
]

HAVE_ESPEAK = shutil.which("espeak-ng") is not None


@functools.lru_cache(maxsize=512)
def _espeak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as f:
        path = f.name
    try:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", path, text],
            check=True,
            capture_output=True,
        )
        x, sr = read_wav(path)
    finally:
        os.unlink(path)
    x = resample(x, sr, SR)
    # trim leading/trailing silence
    nz = np.flatnonzero(np.abs(x) > 1e-3)
    if nz.size:
        x = x[max(0, nz[0] - 160) : nz[-1] + 160]
    return x


def _formant_speech(text: str, pitch: int, speed: int, rng: np.random.Generator) -> np.ndarray:
    """Fallback speech-like signal: voiced syllables with formants + fricatives."""
    vowels = [
        (730, 1090, 2440),
        (270, 2290, 3010),
        (300, 870, 2240),
        (530, 1840, 2480),
        (570, 840, 2410),
        (660, 1720, 2410),
    ]
    n_syl = max(2, len(text) // 3)
    syl_s = 60.0 / max(speed, 60) * 0.9
    out = []
    f0_base = 80 + pitch * 1.6
    for _ in range(n_syl):
        n = int(SR * syl_s * rng.uniform(0.6, 1.4))
        f0 = f0_base * rng.uniform(0.85, 1.15)
        np.arange(n) / SR
        phase = np.cumsum(2 * np.pi * f0 * (1 + 0.02 * rng.standard_normal(n)) / SR)
        src = np.sign(np.sin(phase)) * 0.5 + 0.5 * np.sin(phase)
        F = rng.choice(len(vowels))
        f = np.fft.rfftfreq(n, 1 / SR)
        H = sum(
            a / (1 + ((f - fc) / (60 + fc * 0.08)) ** 2)
            for a, fc in zip((1.0, 0.6, 0.3), vowels[F], strict=False)
        )
        v = np.fft.irfft(np.fft.rfft(src) * H, n)
        env = np.sin(np.pi * np.linspace(0, 1, n)) ** 0.7
        seg = v * env
        if rng.random() < 0.4:  # fricative onset
            m = int(0.05 * SR)
            fr = fft_filter(rng.standard_normal(m).astype(np.float32), lo=3000, hi=7000) * 0.3
            seg = np.concatenate([fr * np.hanning(m), seg])
        out.append(seg)
        out.append(np.zeros(int(SR * rng.uniform(0.0, 0.05))))
    x = np.concatenate(out).astype(np.float32)
    return x / (np.max(np.abs(x)) + 1e-9) * 0.5


def speak(
    text: str,
    voice: str = "en-us",
    speed: int = 165,
    pitch: int = 50,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    if HAVE_ESPEAK:
        return _espeak(text, voice, int(speed), int(pitch)).copy()
    return _formant_speech(text, pitch, speed, rng or np.random.default_rng(hash(text) & 0xFFFF))


# --------------------------------------------------------------------------- noise types


def babble(
    seconds: float, n_voices: int = 6, level_dbfs: float = -35.0, seed: int = 1, rt60: float = 0.8
) -> np.ndarray:
    """n_voices talkers at random distances, each talking with pauses, + room reverb."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n, dtype=np.float32)
    for _v in range(n_voices):
        track = np.zeros(n, dtype=np.float32)
        lang = rng.random()
        pos = int(rng.uniform(0, 2.0) * SR)
        gain = 10 ** (rng.uniform(-8, 0) / 20)  # distance spread
        voice = str(rng.choice(VOICES)) + "+" + str(rng.choice(VARIANTS))
        pitch = int(rng.integers(20, 80))
        speed = int(rng.integers(140, 200))
        while pos < n:
            if lang < 0.3:
                code = str(rng.choice(list(FOREIGN)))
                x = speak(FOREIGN[code], code + "+" + str(rng.choice(VARIANTS)), speed, pitch, rng)
            else:
                x = speak(str(rng.choice(PHRASES)), voice, speed, pitch, rng)
            _place(track, x * gain, pos)
            pos += len(x) + int(rng.uniform(0.2, 2.5) * SR)
        out += track
    out = reverb(out, rt60=rt60, wet=0.6, rng=rng)
    out = fft_filter(out, lo=80, hi=7000, order=2)
    return set_level(out, level_dbfs)


def _tone(
    freq: float, dur: float, harmonics=(1.0, 0.5, 0.25, 0.12), decay: float = 3.0
) -> np.ndarray:
    t = np.arange(int(dur * SR)) / SR
    y = sum(a * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate(harmonics))
    att = np.minimum(1.0, t / 0.01)
    return (y * att * np.exp(-decay * t)).astype(np.float32)


def music(seconds: float, bpm: float = 112, level_dbfs: float = -35.0, seed: int = 2) -> np.ndarray:
    """Pop-ish loop: I-V-vi-IV chords on each beat, bass, kick, hi-hat, a melody."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n, dtype=np.float32)
    beat = 60.0 / bpm
    root = 220.0 * 2 ** (rng.integers(-3, 4) / 12)  # random key
    prog = [(0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12)]  # I V vi IV (semitones)
    b = 0
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    while b * beat < seconds:
        start = int(b * beat * SR)
        chord = prog[(b // 4) % 4]
        for s in chord:  # chord stab, off-beat emphasis
            amp = 0.18 if b % 2 else 0.12
            _place(out, amp * _tone(root * 2 ** (s / 12), beat * 0.95, decay=4.0), start)
        _place(
            out,
            0.35
            * _tone(root / 2 * 2 ** (chord[0] / 12), beat * 0.9, harmonics=(1.0, 0.3), decay=2.5),
            start,
        )  # bass
        if b % 2 == 0:  # kick
            m = int(0.15 * SR)
            t = np.arange(m) / SR
            kick = np.sin(2 * np.pi * np.cumsum(150 * np.exp(-t * 30) + 45) / SR) * np.exp(-t * 25)
            _place(out, 0.6 * kick.astype(np.float32), start)
        for h in (0, 0.5):  # hi-hat eighths
            m = int(0.04 * SR)
            hat = fft_filter(rng.standard_normal(m).astype(np.float32), lo=6000, order=2)
            _place(
                out, 0.08 * hat * np.exp(-np.arange(m) / (0.008 * SR)), start + int(h * beat * SR)
            )
        if rng.random() < 0.7:  # melody note
            note = root * 2 * 2 ** (scale[rng.integers(0, 8)] / 12)
            _place(out, 0.15 * _tone(note, beat * rng.choice([0.5, 1.0]), decay=2.0), start)
        b += 1
    out = reverb(out, rt60=1.0, wet=0.4, rng=rng)  # ceiling speakers in a hall
    out = fft_filter(out, lo=120, hi=6000, order=2)
    return set_level(out, level_dbfs)


def chime(pattern=(659.3, 523.3, 587.3, 392.0), note_s: float = 0.45) -> np.ndarray:
    """Four-note PA chime (vibraphone-like, long decay)."""
    out = np.zeros(int((len(pattern) * note_s + 1.5) * SR), dtype=np.float32)
    for i, f in enumerate(pattern):
        _place(
            out,
            _tone(f, 1.8, harmonics=(1.0, 0.0, 0.15, 0.0, 0.05), decay=2.2),
            int(i * note_s * SR),
        )
    return out / np.max(np.abs(out))


def pa_filter(x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Band-limited public-address sound: 400-3500 Hz horn, mild saturation, hall."""
    y = fft_filter(x, lo=400, hi=3500, order=4)
    y = y / (np.max(np.abs(y)) + 1e-9)
    y = np.tanh(2.0 * y) / np.tanh(2.0)  # cheap amplifier/horn distortion
    return reverb(y.astype(np.float32), rt60=1.4, wet=0.55, rng=rng)


ANNOUNCEMENTS = [
    "Attention shoppers. The store will close in fifteen minutes. "
    "Please bring your final purchases to the checkout.",
    "Could a member of staff please come to checkout number four. Thank you.",
    "Today only, all fresh bakery items are half price in aisle two.",
]


def chime_announcement(
    seconds: float, level_dbfs: float = -35.0, seed: int = 3, every_s: float = 20.0
) -> np.ndarray:
    """Chime + PA announcement every `every_s` seconds; silence (digital zero) between.

    Use store_ambience() for a version with a noise bed between announcements.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n, dtype=np.float32)
    pos = int(rng.uniform(0.5, 3.0) * SR)
    while pos < n:
        c = chime()
        a = speak(str(rng.choice(ANNOUNCEMENTS)), "en-gb+f2", 150, 55, rng)
        seg = np.concatenate([0.5 * c, np.zeros(int(0.3 * SR), np.float32), a])
        seg = pa_filter(seg, rng)
        _place(out, seg, pos)
        pos += len(seg) + int(every_s * SR * rng.uniform(0.6, 1.2))
    active = np.abs(out) > 1e-4
    scale = 10 ** ((level_dbfs - dbfs(out[active] if active.any() else out)) / 20)
    return (out * scale).astype(np.float32)


def trolley(seconds: float, level_dbfs: float = -35.0, seed: int = 4) -> np.ndarray:
    """Shopping trolleys passing: wheel rattle (20-60 Hz trains of clicks), basket
    rattle (band-passed noise bursts), low rumble; 2-8 s passes with fade in/out."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n, dtype=np.float32)
    pos = 0
    while pos < n:
        dur = rng.uniform(2.0, 8.0)
        m = int(dur * SR)
        seg = np.zeros(m, dtype=np.float32)
        rate = rng.uniform(20, 60)  # clicks per second (wheel bumps on floor tiles)
        t = 0.0
        while t < dur:
            k = int(t * SR)
            ln = int(rng.uniform(0.003, 0.02) * SR)
            burst = rng.standard_normal(ln).astype(np.float32) * np.exp(
                -np.arange(ln) / (0.003 * SR)
            )
            _place(seg, burst * rng.uniform(0.3, 1.0), k)
            t += rng.exponential(1 / rate)
        seg = fft_filter(seg, lo=rng.uniform(800, 1500), hi=rng.uniform(4000, 7000), order=2)
        # metal basket resonances
        for fr in rng.uniform(1500, 4500, size=3):
            seg += 0.2 * fft_filter(seg, lo=fr * 0.97, hi=fr * 1.03, order=6)
        rumble = fft_filter(rng.standard_normal(m).astype(np.float32), lo=40, hi=250, order=3)
        seg = seg / (np.std(seg) + 1e-9) + 0.5 * rumble / (np.std(rumble) + 1e-9)
        env = np.sin(np.pi * np.linspace(0, 1, m)) ** 1.5  # approach / leave
        seg *= env * rng.uniform(0.3, 1.0)
        _place(out, seg.astype(np.float32), pos)
        pos += (
            int(rng.uniform(0.3, 0.9) * m)
            if rng.random() < 0.3
            else m + int(rng.uniform(1, 6) * SR)
        )
    return set_level(out, level_dbfs)


def hvac(seconds: float, level_dbfs: float = -50.0, seed: int = 5) -> np.ndarray:
    """Steady pink-ish air-conditioning/fridge hum bed."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    w = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    w /= np.sqrt(np.maximum(f, 20))
    x = np.fft.irfft(w, n).astype(np.float32)
    t = np.arange(n) / SR
    x = x / np.std(x) + 0.3 * np.sin(2 * np.pi * 100 * t).astype(np.float32)  # mains hum
    return set_level(x, level_dbfs)


def store_ambience(
    seconds: float, level_dbfs: float = -35.0, seed: int = 10, weights=None
) -> np.ndarray:
    """All components together; weights are relative levels in dB."""
    w = {"babble": 0.0, "music": -6.0, "announce": -2.0, "trolley": -4.0, "hvac": -14.0}
    if weights:
        w.update(weights)
    parts = {
        "babble": babble(seconds, seed=seed),
        "music": music(seconds, seed=seed + 1),
        "announce": chime_announcement(seconds, seed=seed + 2),
        "trolley": trolley(seconds, seed=seed + 3),
        "hvac": hvac(seconds, seed=seed + 4),
    }
    out = np.zeros(int(seconds * SR), dtype=np.float32)
    for k, x in parts.items():
        out += x * 10 ** (w[k] / 20)
    return set_level(out, level_dbfs)


# --------------------------------------------------------------------------- tonal sounds
# Chimes, scanner beeps, ringtones and alarms: loudspeakers and piezo buzzers playing notes of
# a steady pitch. Each generator scatters its events at random and scales them so that
# `level_dbfs` is their level while they sound (see active_dbfs), which is how "as loud as
# the user" is meant: the user's own level is that of their speech frames.

ACTIVE_REL_DB = -20.0  # a sound "sounds" in the frames within this of its loudest
# The first one comes after 2-4 s: no answer plays in a session's first seconds, and a
# detector needs them to learn the store's level.
FIRST_S = (2.0, 4.0)


def active_dbfs(x: np.ndarray, rel_db: float = ACTIVE_REL_DB) -> float:
    """RMS level over the 20 ms frames within `rel_db` of the loudest one."""
    lv = frame_dbfs(x)
    n = len(lv)
    f = np.asarray(x[: n * FRAME], np.float64).reshape(n, FRAME)[lv > lv.max() + rel_db]
    return dbfs(f)


def set_active_level(x: np.ndarray, level_dbfs: float) -> np.ndarray:
    return (x * 10 ** ((level_dbfs - active_dbfs(x)) / 20)).astype(np.float32)


def _note(
    freq: float,
    dur: float,
    partials=((1.0, 1.0),),
    decay: float = 0.0,
    attack_s: float = 0.004,
    release_s: float = 0.004,
    tremolo_hz: float = 0.0,
    rng: np.random.Generator | None = None,
    vibrato_hz: float = 0.0,
    vibrato: float = 0.0,
) -> np.ndarray:
    """One note: partials (frequency ratio, amplitude), the higher ones dying sooner
    (`decay` per second times sqrt(ratio), as in struck bars), with an attack and a release
    ramp; `tremolo_hz` is a vibraphone's rotating-vane amplitude wobble (+-35 %);
    `vibrato_hz` a sung-like pitch wobble of +-`vibrato` (a fraction of the pitch)."""
    rng = rng or np.random.default_rng(0)
    t = np.arange(int(dur * SR)) / SR
    if vibrato_hz:  # the phase of a pitch that wobbles: t stretched and squeezed in turn
        t_pitch = t - vibrato * np.cos(2 * np.pi * vibrato_hz * t) / (2 * np.pi * vibrato_hz)
    else:
        t_pitch = t
    y = np.zeros(len(t))
    for ratio, amp in partials:
        if freq * ratio < 0.45 * SR:
            ph = rng.uniform(0, 2 * np.pi)
            y += (
                amp
                * np.sin(2 * np.pi * freq * ratio * t_pitch + ph)
                * np.exp(-decay * ratio**0.5 * t)
            )
    env = np.minimum(1.0, t / attack_s) * np.clip((dur - t) / release_s, 0.0, 1.0)
    if tremolo_hz:
        env *= 1 - 0.35 * (0.5 - 0.5 * np.cos(2 * np.pi * tremolo_hz * t))
    return (y * env).astype(np.float32)


def _buzzer(freq: float, dur: float, duty: float = 0.5, **kw) -> np.ndarray:
    """A piezo or phone-speaker pulse wave: its harmonics below Nyquist, amplitude
    |sin(pi k duty)| / k (a square at duty 0.5: odd harmonics 1, 1/3, 1/5...)."""
    partials = tuple(
        (float(k), abs(np.sin(np.pi * k * duty)) / k)
        for k in range(1, 12)
        if abs(np.sin(np.pi * k * duty)) > 1e-6
    )
    return _note(freq, dur, partials, **kw)


def _speaker(x: np.ndarray, lo: float, hi: float, drive: float) -> np.ndarray:
    """A small loudspeaker: band-limited, and saturating when driven hard."""
    y = fft_filter(x, lo=lo, hi=hi, order=2)
    y = y / (np.max(np.abs(y)) + 1e-9)
    return (np.tanh(drive * y) / np.tanh(drive)).astype(np.float32)


CHIME_TUNES = [  # Hz: the two-tone "ding-dong", three-tone up and down, four-tone
    (784.0, 659.3),
    (659.3, 523.3),
    (587.3, 466.2),
    (392.0, 329.6),
    (329.6, 261.6),
    (261.6, 220.0),
    (220.0, 174.6),
    (523.3, 659.3, 784.0),
    (261.6, 329.6, 392.0),
    (392.0, 329.6, 261.6),
    (659.3, 523.3, 587.3, 392.0),
    (329.6, 261.6, 293.7, 196.0),
]
CHIME_TIMBRES = [  # (ratio, amplitude): electronic, vibraphone, tubular bell
    ((1.0, 1.0), (2.0, 0.35), (3.0, 0.12)),
    ((1.0, 1.0), (4.0, 0.3), (10.0, 0.06)),
    ((1.0, 1.0), (2.0, 0.5), (2.76, 0.3), (5.4, 0.12), (8.93, 0.05)),
]


def chime_event(
    rng: np.random.Generator, tune_i: int | None = None, timbre_i: int | None = None
) -> np.ndarray:
    """One PA chime (no announcement after it): a two-, three- or four-tone tune, each note
    ringing 1.2-2 s from a 4 ms strike with an exponential decay; electronic, vibraphone or
    bell timbre (a third of them with a 4-6 Hz tremolo); through a ceiling horn into a hall.
    `tune_i`, `timbre_i`: that CHIME_TUNES and CHIME_TIMBRES entry (else drawn)."""
    tune_drawn, timbre_drawn = rng.integers(len(CHIME_TUNES)), rng.integers(len(CHIME_TIMBRES))
    tune = CHIME_TUNES[tune_drawn if tune_i is None else tune_i]
    timbre = CHIME_TIMBRES[timbre_drawn if timbre_i is None else timbre_i]
    step, ring = rng.uniform(0.45, 0.8), rng.uniform(1.2, 2.0)
    decay, tremolo = rng.uniform(1.5, 3.5), (rng.uniform(4.0, 6.0) if rng.random() < 0.3 else 0)
    notes = _struck(tune, step, ring, timbre, decay, tremolo, rng)
    return _horn_in_hall(notes, (300, 4000), (0.8, 1.8), (0.3, 0.55), rng)


def _struck(
    tune, step: float, ring: float, timbre, decay: float, tremolo: float, rng: np.random.Generator
) -> np.ndarray:
    """The notes of `tune` (Hz) struck `step` s apart, each ringing `ring` s in `timbre`."""
    seg = np.zeros(int((len(tune) * step + ring) * SR), np.float32)
    for i, f in enumerate(tune):
        _place(seg, _note(f, ring, timbre, decay, 0.004, 0.05, tremolo, rng), int(i * step * SR))
    return seg


def _horn_in_hall(
    seg: np.ndarray,
    band_hz: tuple[float, float],
    rt60_s: tuple[float, float],
    wet: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """`seg` through a ceiling horn driven into saturation (`band_hz`) and a hall (its rt60
    and wet share drawn from these ranges), at 0 dBFS active level."""
    seg = _speaker(seg, band_hz[0], band_hz[1], rng.uniform(1.0, 2.0))
    seg = reverb(seg, rt60=rng.uniform(*rt60_s), wet=rng.uniform(*wet), rng=rng)
    return set_active_level(seg, 0.0)


def scanning_event(rng: np.random.Generator, seconds: float | None = None) -> np.ndarray:
    """3-8 s of checkouts scanning (three lanes): per lane a beep of its own pitch (1.2-3.2
    kHz, sine or piezo square, 50-180 ms) every 0.4-4 s, some double (a re-scan), now and
    then a low error buzz or a card terminal's beep-beep; the nearest lane loudest."""
    n = int((seconds or rng.uniform(3.0, 8.0)) * SR)
    out = np.zeros(n, np.float32)
    for lane in range(3):
        f, dur = rng.uniform(1200, 3200), rng.uniform(0.05, 0.18)
        square, gain = rng.random() < 0.5, 10 ** (-lane * rng.uniform(3, 6) / 20)
        pos = int(rng.uniform(0.0, 0.8) * SR) if lane else 0
        while pos < n:
            kind = rng.random()
            if kind < 0.06:  # "please rescan": low buzz
                beeps = [(rng.uniform(400, 700), 0.35, 0.0)]
            elif kind < 0.12:  # card terminal: beep-beep
                beeps = [(1000.0, 0.12, 0.0), (1000.0, 0.12, 0.2)]
            elif kind < 0.3:  # scanned twice
                beeps = [(f, dur, 0.0), (f, dur, dur + 0.06)]
            else:
                beeps = [(f, dur, 0.0)]
            for fb, d, at in beeps:
                b = _buzzer(fb, d, 0.5, attack_s=0.002) if square else _note(fb, d, rng=rng)
                _place(out, gain * b, pos + int(at * SR))
            pos += int((0.4 + rng.exponential(1.2)) * SR)
    out = _speaker(out, 500, 7000, 1.2)
    return set_active_level(reverb(out, rt60=0.8, wet=0.3, rng=rng), 0.0)


MARIMBA = ((1.0, 1.0), (3.93, 0.25), (9.2, 0.05))
PENTATONIC = (0, 2, 4, 7, 9, 12, 14, 16)


def ringtone_event(rng: np.random.Generator) -> np.ndarray:
    """A phone ringing for 4-12 s: a marimba or chiptune phrase (C4-B5, 110-200 ms notes)
    looped, a digital two-tone trill, or an old bell's clapper, in rings of 1-2 s; through a
    phone's speaker (a third of them muffled in a pocket or bag)."""
    style = rng.integers(4)
    out = np.zeros(int(rng.uniform(4.0, 12.0) * SR), np.float32)
    pos = 0
    if style < 2:  # melodic loop
        root = 261.6 * 2 ** (rng.integers(0, 24) / 12)
        notes = rng.choice(PENTATONIC, size=rng.integers(6, 11))
        note_s = rng.uniform(0.11, 0.2)
        while pos < len(out):
            for k in notes:
                f = root * 2 ** (k / 12)
                if style == 0:
                    x = _note(f, note_s * 2.5, MARIMBA, rng.uniform(6, 12), 0.002, 0.02, rng=rng)
                else:
                    x = _buzzer(f, note_s * 0.85, rng.choice([0.25, 0.5]), release_s=0.01)
                _place(out, x, pos)
                pos += int(note_s * SR)
            pos += int(rng.uniform(0.3, 0.9) * SR)
    else:  # rings of 1-2 s with 1.5-3 s of silence between
        on_s, off_s = rng.uniform(1.0, 2.0), rng.uniform(1.5, 3.0)
        fa, rate = rng.uniform(700, 1400), rng.uniform(16, 25)
        while pos < len(out):
            step = 1 / rate
            for i in range(int(on_s * rate)):
                if style == 2:  # two tones alternating
                    x = _note(fa * (1.25 if i % 2 else 1.0), step, ((1.0, 1.0), (3.0, 0.2)))
                else:  # bell struck by a clapper
                    x = _note(fa, 0.3, ((1.0, 1.0), (2.76, 0.4), (5.4, 0.2)), 6.0, rng=rng)
                _place(out, x, pos + int(i * step * SR))
            pos += int((on_s + off_s) * SR)
    pocket = rng.random() < 0.3
    out = _speaker(out, 400, 2500 if pocket else 7000, rng.uniform(1.0, 2.5))
    return set_active_level(reverb(out, rt60=0.7, wet=rng.uniform(0.1, 0.4), rng=rng), 0.0)


def alarm_event(rng: np.random.Generator) -> np.ndarray:
    """A door or security alarm for 3-10 s: a security gate's pulsed beeps (2.4-3.5 kHz,
    0.15-0.3 s on and off), an exit door's sustained piezo tone (2.8-3.8 kHz), a hi-lo
    warble (500-800 Hz and a fourth up), or a freezer door's 4 kHz beep each second."""
    dur, style = rng.uniform(3.0, 10.0), int(rng.integers(4))
    seg = np.zeros(int(dur * SR), np.float32)
    if style == 1:
        seg[:] = _buzzer(rng.uniform(2800, 3800), dur, 0.5, release_s=0.02)
    else:
        f = {0: rng.uniform(2400, 3500), 2: rng.uniform(500, 800), 3: 4000.0}[style]
        on = {0: rng.uniform(0.15, 0.3), 2: rng.uniform(0.3, 0.5), 3: 0.15}[style]
        period = {0: 2 * on, 2: on, 3: 1.0}[style]
        for i in range(int(dur / period)):
            fi = f * (1.33 if style == 2 and i % 2 else 1.0)
            _place(seg, _buzzer(fi, on, 0.5, release_s=0.005), int(i * period * SR))
    seg = reverb(fft_filter(seg, lo=300, hi=7000, order=2), rt60=1.0, wet=0.35, rng=rng)
    return set_active_level(seg, 0.0)


TONE_EVENTS = {
    "chime": chime_event,
    "scanner": scanning_event,
    "ringtone": ringtone_event,
    "alarm": alarm_event,
}

# The tonal sounds that fool Silero into hearing a voice (most of them, some of the time, once
# the echo canceller has been over them): low notes struck while the last one still rings (a
# third apart below 400 Hz, their partials 40-60 Hz apart: one blur in a 32 ms spectrum), with
# a tremolo or a harmonic-rich timbre, and ringtones that wobble in pitch as a singer does.
LOW_TUNES = [  # Hz: two-tone chimes, a third or a fourth apart, A3-F3 up to G4-E4
    (220.0, 174.6),
    (261.6, 220.0),
    (293.7, 246.9),
    (329.6, 261.6),
    (349.2, 293.7),
    (392.0, 329.6),
]
HARMONIC_TIMBRE = tuple((float(k), 1.0 / k) for k in range(1, 6))  # a horn-like tone


def _low_two_tone(rng: np.random.Generator, timbre, tremolo_p: float) -> np.ndarray:
    """A two-tone chime from LOW_TUNES, the second note struck 0.5-0.9 s after the first
    while it rings (1.4-2.2 s each), a 4-6.5 Hz tremolo with probability `tremolo_p`; through
    a ceiling horn driven into saturation and a reverberant hall."""
    tune = LOW_TUNES[rng.integers(len(LOW_TUNES))]
    step, ring, decay = rng.uniform(0.5, 0.9), rng.uniform(1.4, 2.2), rng.uniform(1.0, 2.5)
    tremolo = rng.uniform(4.0, 6.5) if rng.random() < tremolo_p else 0.0
    notes = _struck(tune, step, ring, timbre, decay, tremolo, rng)
    return _horn_in_hall(notes, (200, 5000), (1.0, 2.0), (0.4, 0.6), rng)


def low_bell_event(rng: np.random.Generator) -> np.ndarray:
    """A low two-tone bell chime (tubular-bell partials) with a tremolo."""
    return _low_two_tone(rng, CHIME_TIMBRES[2], 1.0)


def harmonic_chime_event(rng: np.random.Generator) -> np.ndarray:
    """A low two-tone PA chime with five harmonics, half of them with a tremolo."""
    return _low_two_tone(rng, HARMONIC_TIMBRE, 0.5)


def vibrato_ring_event(rng: np.random.Generator) -> np.ndarray:
    """A phone ringing for 4-8 s: a melody of held notes (A3-B4 root, 0.2-0.45 s each) that
    wobble in pitch by 1-3 % at 4.5-7 Hz, in a harmonic or a soft timbre, on a phone speaker."""
    root = 220.0 * 2 ** (rng.integers(0, 15) / 12)
    notes = rng.choice(PENTATONIC, size=rng.integers(4, 8))
    note_s = rng.uniform(0.2, 0.45)
    soft = ((1.0, 1.0), (2.0, 0.3), (3.0, 0.1))
    timbre = HARMONIC_TIMBRE if rng.random() < 0.5 else soft
    vib_hz, vib = rng.uniform(4.5, 7.0), rng.uniform(0.01, 0.03)
    out = np.zeros(int(rng.uniform(4.0, 8.0) * SR), np.float32)
    pos = 0
    while pos < len(out):
        for k in notes:
            f = root * 2 ** (k / 12)
            x = _note(f, note_s, timbre, 1.0, 0.02, 0.05, 0.0, rng, vib_hz, vib)
            _place(out, x, pos)
            pos += int(note_s * SR)
        pos += int(rng.uniform(0.3, 0.8) * SR)
    out = _speaker(out, 300, 7000, rng.uniform(1.0, 2.5))
    return set_active_level(reverb(out, rt60=0.7, wet=rng.uniform(0.1, 0.4), rng=rng), 0.0)


HARD_EVENTS = {
    "low bell": low_bell_event,
    "harmonic chime": harmonic_chime_event,
    "vibrato ring": vibrato_ring_event,
}
EVENTS = {**TONE_EVENTS, **HARD_EVENTS}


def tonal(
    kind: str, seconds: float, level_dbfs: float = -25.0, seed: int = 20, every_s=(3.0, 10.0)
) -> np.ndarray:
    """Sounds of one kind (an EVENTS key) one after another, `every_s` apart, each 0-4
    dB under `level_dbfs` (nearer and farther), the first after FIRST_S."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * SR), np.float32)
    pos = int(rng.uniform(*FIRST_S) * SR)
    while pos < len(out):
        x = EVENTS[kind](rng) * 10 ** (rng.uniform(-4, 0) / 20)
        _place(out, x, pos)
        pos += len(x) + int(rng.uniform(*every_s) * SR)
    return set_active_level(out, level_dbfs)


def tonal_store(
    seconds: float, ambience_dbfs: float = -35.0, tone_dbfs: float = -25.0, seed: int = 30
) -> np.ndarray:
    """The store's ambience with every kind of tonal sound over it at `tone_dbfs`."""
    out = store_ambience(seconds, ambience_dbfs, seed=seed)
    for i, kind in enumerate(TONE_EVENTS):
        out += tonal(kind, seconds, tone_dbfs, seed=seed + 1 + i)
    return out


def sounds_over(
    kind: str, spans: list[tuple[int, int]], n: int, level_dbfs: float, seed: int = 40
) -> np.ndarray:
    """`n` samples with a sound of `kind` (an EVENTS key) starting 0-1 s before each of
    `spans` (the user's utterances, in samples), each at `level_dbfs` (as active_dbfs): the
    user talking over a chime, a beep, a ringtone or an alarm."""
    rng = np.random.default_rng(seed)
    out = np.zeros(n, np.float32)
    for start, _end in spans:
        x = EVENTS[kind](rng) * 10 ** (level_dbfs / 20)
        _place(out, x, max(0, start - int(rng.uniform(0.0, 1.0) * SR)))
    return out


NOISES = {
    "babble": babble,
    "music": music,
    "announce": chime_announcement,
    "trolley": trolley,
    "ambience": store_ambience,
}

# --------------------------------------------------------------------------- user speech + mixer


@dataclass
class Mix:
    audio: np.ndarray  # float32 mixture
    labels: np.ndarray  # bool per 20 ms frame: user speech active
    speech: np.ndarray  # scaled user speech alone
    noise: np.ndarray  # noise alone
    utterances: list[tuple[int, int]]  # (start, end) sample indices of user utterances


def speech_labels(speech: np.ndarray, rel_db: float = -35.0, hang_frames: int = 3) -> np.ndarray:
    """Ground truth: frame is speech if its clean level is within rel_db of the peak
    frame level; short gaps (< hang_frames) inside words are bridged."""
    lv = frame_dbfs(speech)
    on = lv > (np.max(lv) + rel_db)
    out = on.copy()
    last = -(10**9)
    for i, v in enumerate(on):
        if v:
            if 0 < i - last <= hang_frames:
                out[last:i] = True
            last = i
    return out


def user_speech(
    seconds: float, seed: int = 7, voice: str = "en-us+m3", gap_s=(1.5, 4.0)
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Close-talk user: utterances separated by pauses. Returns (audio, utterance spans)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n, dtype=np.float32)
    spans = []
    pos = int(rng.uniform(*gap_s) * SR)
    while True:
        x = speak(str(rng.choice(PHRASES)), voice, int(rng.integers(150, 180)), 45, rng)
        if pos + len(x) > n:
            break
        _place(out, x, pos)
        spans.append((pos, pos + len(x)))
        pos += len(x) + int(rng.uniform(*gap_s) * SR)
    # slight small-room colouring (close mic => mostly dry)
    out = reverb(out, rt60=0.25, wet=0.15, rng=rng)
    return out, spans


def mix_at_snr(
    speech: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    utterances: list[tuple[int, int]] | None = None,
) -> Mix:
    """Scale speech so that (RMS over active speech frames) - (RMS of noise) = snr_db.

    The noise keeps its level; output is clipped to [-1, 1] only at PCM conversion.
    """
    n = min(len(speech), len(noise))
    s, v = speech[:n].astype(np.float32), noise[:n].astype(np.float32)
    lab = speech_labels(s)
    nf = len(lab)
    active = s[: nf * FRAME].reshape(nf, FRAME)[lab]
    s_db = dbfs(active) if active.size else dbfs(s)
    g = 10 ** ((dbfs(v) + snr_db - s_db) / 20)
    s = s * g
    return Mix(audio=s + v, labels=lab, speech=s, noise=v, utterances=utterances or [])


def chunks_pcm16(x: np.ndarray, frame: int = FRAME):
    """Yield 20 ms PCM16 chunks (bytes), as the mic would deliver them."""
    b = to_pcm16(x)
    step = frame * 2
    for i in range(0, len(b) - step + 1, step):
        yield b[i : i + step]
