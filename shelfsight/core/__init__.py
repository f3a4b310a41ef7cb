"""The bottom stage: value types and constants every other stage may use.

Nothing here imports anything of shelfsight's but `shelfsight.errors`, nor OpenCV, sounddevice
or the SDK: `media/`, `live/` and everything above them can take what they share from here
without reaching into each other.

    pcm        audio formats: rates, chunk sizes
    frames     EncodedFrame, a JPEG ready to send
    guidance   Guidance, where the guide's item is (what its sound says)
    controls   what the user's keys and typed lines become
    prices     the dated default prices of the model
"""
