"""http_check.py -- drives examples/c/http_server with a plain socket client.

    python3 tests/examples/http_check.py PATH/TO/http_server BACKEND

Starts the server on a free port (--port 0; it prints the port), then checks
keep-alive (several requests on one connection, each answered before the
next is sent), pipelining (many requests in one send, answered in order),
HEAD, HTTP/1.0 and "Connection: close" (the server closes after the
response), a malformed request (400, then close), a request body that is
skipped, and many connections at once. Exits 0 when all pass, 1 with a
message otherwise, 77 when the server says the backend is refused (ctest's
skip). Every wait is bounded; no time is measured."""

import socket
import subprocess
import sys
import threading

WAIT = 10.0
BODY = b"Hello, world!\n"


class Failure(Exception):
    pass


def request(path="/", method="GET", version="1.1", headers=(), body=b""):
    lines = [f"{method} {path} HTTP/{version}", "Host: test"] + list(headers)
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Client:
    """Reads responses off one connection: status line, headers, body by Content-Length."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buffer += data

    def response(self, head=False):
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        header, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = header.decode().split("\r\n")
        version, code, _reason = lines[0].split(" ", 2)
        if version != "HTTP/1.1":
            raise Failure(f"status line {lines[0]!r}")
        fields = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            fields[name.strip().lower()] = value.strip()
        length = 0 if head else int(fields.get("content-length", "0"))
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(code), fields, body

    def closed_by_peer(self):
        """True once the server has closed the connection (and sent nothing more)."""
        try:
            data = self.sock.recv(1)
        except ConnectionResetError:
            return True
        if data:
            raise Failure(f"unexpected bytes after the last response: {data!r}")
        return True

    def close(self):
        self.sock.close()


def expect(condition, what):
    if not condition:
        raise Failure(what)


def check_ok(response, keep_alive=True, head=False):
    code, fields, body = response
    expect(code == 200, f"status {code}, not 200")
    expect(fields.get("content-length") == str(len(BODY)), f"content-length {fields.get('content-length')}")
    expect(body == (b"" if head else BODY), f"body {body!r}")
    expect((fields.get("connection", "").lower() != "close") == keep_alive,
           f"connection header {fields.get('connection')!r} (keep-alive expected: {keep_alive})")


def keep_alive(port):
    c = Client(port)
    for i in range(5):
        c.send(request(f"/ka/{i}"))
        check_ok(c.response())
    c.close()


def pipelined(port):
    c = Client(port)
    n = 50
    c.send(b"".join(request(f"/p/{i}") for i in range(n)))
    for _ in range(n):
        check_ok(c.response())
    # and split across sends in the middle of a request
    data = request("/split") * 3
    c.send(data[:7])
    c.send(data[7:40])
    c.send(data[40:])
    for _ in range(3):
        check_ok(c.response())
    c.close()


def head_and_body(port):
    c = Client(port)
    c.send(request("/", method="HEAD"))
    check_ok(c.response(head=True), head=True)
    c.send(request("/upload", method="POST", body=b"x" * 1000) + request("/after"))
    check_ok(c.response())
    check_ok(c.response())
    c.close()


def closing(port):
    for req in (request(version="1.0"), request(headers=["Connection: close"])):
        c = Client(port)
        c.send(req)
        check_ok(c.response(), keep_alive=False)
        expect(c.closed_by_peer(), "the connection stayed open")
        c.close()
    c = Client(port)  # HTTP/1.0 asking for keep-alive stays open, and the response says so
    c.send(request(version="1.0", headers=["Connection: keep-alive"]))
    response = c.response()
    check_ok(response)
    expect(response[1].get("connection", "").lower() == "keep-alive", "no Connection: keep-alive for HTTP/1.0")
    c.send(request())
    check_ok(c.response())
    c.close()


def malformed(port):
    c = Client(port)
    c.send(b"NONSENSE\r\n\r\n")
    code, fields, _ = c.response()
    expect(code == 400, f"status {code} for a malformed request, not 400")
    expect(fields.get("connection", "").lower() == "close", "no Connection: close on the 400")
    expect(c.closed_by_peer(), "the connection stayed open after a 400")
    c.close()


def many_connections(port):
    errors = []

    def run(i):
        try:
            c = Client(port)
            for j in range(10):
                c.send(request(f"/m/{i}/{j}") * 2)
                check_ok(c.response())
                check_ok(c.response())
            c.close()
        except Exception as exc:  # reported by the main thread
            errors.append(f"connection {i}: {exc!r}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
        expect(not t.is_alive(), "a client thread did not finish")
    expect(not errors, "; ".join(errors[:3]))


def main():
    server_path, backend = sys.argv[1], sys.argv[2]
    server = subprocess.Popen([server_path, "--backend", backend, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        if server.poll() == 77 or "skipped" in line:
            print(f"http_check: {line.strip()}")
            return 77
        if "listening on 127.0.0.1:" not in line:
            print(f"http_check: FAIL the server said {line!r}")
            return 1
        port = int(line.rsplit(":", 1)[1])
        for check in (keep_alive, pipelined, head_and_body, closing, malformed, many_connections):
            try:
                check(port)
            except (Failure, OSError, EOFError, ValueError) as exc:
                print(f"http_check: FAIL {check.__name__} ({backend}): {exc!r}")
                return 1
            print(f"http_check: ok   {check.__name__} ({backend})")
        expect(server.poll() is None, "the server exited")
        print("http_check: success")
        return 0
    finally:
        server.kill()
        server.wait(WAIT)


if __name__ == "__main__":
    sys.exit(main())
