"""A phone camera app on a real local socket: HTTP multipart MJPEG (multipart/x-mixed-replace).

One server for every test that needs a network camera: `fps` numbered shelf pictures (or any
`picture(n)`); `up = False` cuts every stream and answers new requests with 503, as an app
that stopped does; `frames_per_connection` ends each stream after that many pictures, hung up
(`hang_up`) or left open and silent until `close()`, as a frozen app does.
"""

from __future__ import annotations

import http.server
import socketserver
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from tests.support.scene import draw_shelf


def mjpeg_part(jpeg: bytes) -> bytes:
    """One picture of a multipart/x-mixed-replace stream, boundary "frame"."""
    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode() + jpeg + b"\r\n"


def start_multipart(
    handler: type[http.server.BaseHTTPRequestHandler],
) -> tuple[socketserver.ThreadingTCPServer, str]:
    """`handler` served on 127.0.0.1 (a free port) from a daemon thread, each request on a
    thread of its own; the server and the stream's URL."""
    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/live.mjpg"


def start_stream(handler: http.server.BaseHTTPRequestHandler) -> None:
    """The response head of a multipart MJPEG stream."""
    handler.send_response(200)
    handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
    handler.end_headers()


class MjpegServer:
    def __init__(
        self,
        *,
        fps: float = 10.0,
        frames_per_connection: int | None = None,
        hang_up: bool = True,
        picture: Callable[[int], np.ndarray] = lambda n: draw_shelf(320, 240, n),
    ) -> None:
        self.up = True
        self.frame_number = 0  # the last picture's number, over all connections
        self.connections = 0
        self._closed = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not server.up:
                    self.send_error(503)
                    return
                server.connections += 1
                start_stream(self)
                sent = 0
                while server.up and not server._closed.is_set():
                    if frames_per_connection is not None and sent >= frames_per_connection:
                        if not hang_up:
                            server._closed.wait()  # frozen: open and silent
                        return
                    server.frame_number += 1
                    jpeg = cv2.imencode(".jpg", picture(server.frame_number))[1].tobytes()
                    try:
                        self.wfile.write(mjpeg_part(jpeg))
                    except OSError:
                        return
                    sent += 1
                    time.sleep(1 / fps)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd, self.url = start_multipart(Handler)

    def close(self) -> None:
        self.up = False
        self._closed.set()
        self._httpd.shutdown()
        self._httpd.server_close()
