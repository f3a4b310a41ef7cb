"""One conversation: turn taking, the system prompt, recording and replaying it."""
