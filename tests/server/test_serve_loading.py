# SPDX-License-Identifier: MIT
"""`lowbit serve` answers while the model loads (issue #13): GET /health is 503 with an OpenAI-style error JSON
("Loading model") and so are the API routes, then /health turns 200 once the URL line is printed. The reference
model loads in well under a second, so the test sets LOWBIT_TEST_SERVE_LOAD_DELAY_MS (a test-only hook in
server.cpp that waits before loading) to hold the loading state for a few seconds."""
import json
import os
import socket
import subprocess
import tempfile
import time

from serve_util import LOWBIT, REF_MODEL, Server, check, skip


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Loading(Server):
    """A server on a chosen port whose URL line has not been read yet (Server.__init__ waits for it)."""

    def __init__(self, model, port, delay_ms):
        self.log = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, LOWBIT_TEST_SERVE_LOAD_DELAY_MS=str(delay_ms))
        self.proc = subprocess.Popen([LOWBIT, "serve", "-m", model, "--port", str(port), "-t", "1", "-np", "2"],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        self.host, self.port = "127.0.0.1", port
        self.url = "http://127.0.0.1:%d" % port


def main():
    if not LOWBIT or not os.path.exists(LOWBIT):
        skip("LOWBIT_BIN is not set")
    srv = Loading(REF_MODEL, free_port(), 4000)
    try:
        # The listener is up before loading starts: poll until it accepts.
        t0 = time.time()
        while True:
            check(srv.proc.poll() is None, "server exited while loading: %s" % srv.stderr())
            try:
                code, _, body = srv.request("GET", "/health", timeout=5)
                break
            except OSError:
                check(time.time() - t0 < 30, "server never listened: %s" % srv.stderr())
                time.sleep(0.05)
        check(code == 503, "/health while loading: HTTP %d %r" % (code, body))
        check(isinstance(body, dict) and body["error"]["message"] == "Loading model"
              and body["error"]["type"] == "unavailable_error", "/health 503 body: %r" % (body,))
        code, _, body = srv.request("GET", "/v1/models")
        check(code == 503 and body["error"]["message"] == "Loading model", "/v1/models while loading: %d %r" % (code, body))
        code, _, body = srv.request("POST", "/v1/completions", {"prompt": "Hello", "max_tokens": 2})
        check(code == 503 and body["error"]["message"] == "Loading model", "completions while loading: %d %r" % (code, body))
        check(srv.proc.poll() is None and time.time() - t0 < 3.5, "the loading window closed before the checks")
        # Loaded: the URL line, then 200 and working routes.
        line = srv.proc.stdout.readline()
        check(("http://127.0.0.1:%d" % srv.port) in line, "ready line %r: %s" % (line, srv.stderr()))
        check(time.time() - t0 >= 3.0, "loaded after %.1f s, before the 4 s delay" % (time.time() - t0))
        code, _, body = srv.request("GET", "/health")
        check(code == 200 and body == {"status": "ok"}, "/health after loading: %d %r" % (code, body))
        code, _, body = srv.request("POST", "/v1/completions", {"prompt": "Hello", "max_tokens": 2, "temperature": 0})
        check(code == 200 and body["usage"]["completion_tokens"] == 2, "completion after loading: %d %r" % (code, body))
    finally:
        rc = srv.stop()
    check(rc == 0, "exit code %r: %s" % (rc, srv.stderr()))
    print("OK")


if __name__ == "__main__":
    main()
