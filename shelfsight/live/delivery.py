"""Which items the server has surely received, so a resumption handle forgets only those.

A resumption handle covers what the server had consumed when it issued it. A send that
returned was only written: on a slow tether seconds of it may still sit in the kernel's buffer
or the phone network's queue when the handle comes, and a connection lost then would take it
along. So an item sent on a connection counts as delivered only once the kernel says so:

- with byte counts (Linux `TCP_INFO`): its end's position in the byte stream (an upper bound:
  what the kernel took, in flight counted in whole segments, plus what waits above it) is at
  or below the bytes acknowledged;
- on any platform: a reading with nothing owed and nothing waiting above the kernel delivers
  everything sent before it. With a kernel probe (Linux, macOS) "nothing owed" means nothing
  unacknowledged (macOS then may send again a little the server had: harmless). Without one
  (neither platform) it means only that the kernel took it all: what its buffer and the path
  hold (up to about a second of speech when the uplink stalls) can be lost with the
  connection, unreported. Stated rather than hidden; both platforms users start on have one.

What the server had read from its socket but not yet put into its state is not knowable from
here (the Gemini API's `last_consumed_client_message_index` is Vertex-only); a server reads as
it goes, so that is the socket's last moments. Indices are the outbox's `sent_count`. Loop
thread only; one per connection.
"""

from __future__ import annotations

import collections


class Delivery:
    def __init__(self, first_index: int) -> None:
        self.delivered = first_index  # every item up to this index has surely arrived
        self._last_sent = first_index
        self._ends: collections.deque[tuple[int, int]] = collections.deque()  # (index, byte)

    def sent(self, index: int, end_byte: int | None) -> None:
        """Item `index` was written; `end_byte`: where it ends in the stream, if known."""
        self._last_sent = index
        if end_byte is not None:
            self._ends.append((index, end_byte))

    def observe(self, *, acked_bytes: int | None, drained: bool) -> None:
        """A reading of the send path: bytes acknowledged (if counted), or all of it out."""
        if drained:
            self.delivered = self._last_sent
            self._ends.clear()
            return
        if acked_bytes is None:
            return
        while self._ends and self._ends[0][1] <= acked_bytes:
            self.delivered = max(self.delivered, self._ends.popleft()[0])
