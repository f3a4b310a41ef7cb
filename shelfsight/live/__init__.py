"""The Gemini Live connection: setup, the one link that owns it, what the server says, errors."""
