"""Guiding the camera (and the hand) onto an item the model marked: box, tracker, cues."""
