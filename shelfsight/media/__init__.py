"""Sources and sinks: camera and frames, microphones, speakers, sound devices, echo cancelling.

Every source has one small async contract with a device and a file behind it (a WAV file mic,
a video-file camera), so tests and replays run the pipeline a live run uses.
"""
