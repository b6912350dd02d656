"""A client's webhook endpoint for tests of the studio's callbacks: a real HTTP server on
127.0.0.1 that records each body it is sent and answers the next code of `answers` (200
once they run out). `on_post` runs while a request is open (the test's chance to change
something meanwhile); `stall`, an Event, holds every answer until it is set (a client
that hangs). The `receiver` fixture lets the studio call it on loopback.
"""

import http.server
import json
import threading

import pytest


class Receiver:
    def __init__(self):
        self.received, self.answers, self.on_post, self.stall = [], [], None, None
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                if receiver.on_post:
                    receiver.on_post()
                if receiver.stall:
                    receiver.stall.wait(60)
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver(settings):
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = True  # it listens on loopback
    receiver = Receiver()
    yield receiver
    if receiver.stall:
        receiver.stall.set()
    receiver.server.shutdown()
