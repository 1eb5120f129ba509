"""A real HTTP receiver on loopback for outbound tests: records every request it gets and answers from a script."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] | None = None
    body: bytes = b""
    delay: float = 0.0  # seconds before answering (a slow receiver)
    close: bool = False  # close the connection after answering, without a `Connection: close` header


class Receiver:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.received: list[Received] = []
        self.script: list[Reply] = []  # answers in order; then `default`
        self.default = Reply()
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender went away mid-request (killed): nothing was delivered
                    self.close_connection = True
                    return
                with receiver.arrived:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    reply = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver.arrived.notify_all()
                if reply.delay:
                    receiver.release.wait(reply.delay)
                self.send_response(reply.status)
                for key, value in (reply.headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
                if reply.close:
                    self.close_connection = True

            do_GET = do_POST

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.release = threading.Event()  # ends every delayed answer at once (the test is over)
        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout), self.received
            return list(self.received)


@contextmanager
def receiving(script: list[Reply] | None = None, default: Reply | None = None) -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.script = list(script or [])
    receiver.default = default or Reply()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        receiver.server.shutdown()
        receiver.server.server_close()
