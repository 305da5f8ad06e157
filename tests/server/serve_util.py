# SPDX-License-Identifier: MIT
"""Helpers of the `lowbit serve` tests: the reference model quantized to Q4_K_M once per test process (in a temp
dir, with the built `lowbit quantize`), a server on an ephemeral loopback port, raw HTTP requests."""
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time

LOWBIT = os.environ.get("LOWBIT_BIN", "")
SOURCE = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
REF_MODEL = os.path.join(SOURCE, "models", "lowbit-ref-30m")


def skip(reason):
    print("SKIP:", reason)
    sys.exit(77)


def quantized_model(tmp):
    """The reference model as Q4_K_M GGUF in `tmp`."""
    if not LOWBIT or not os.path.exists(LOWBIT):
        skip("LOWBIT_BIN is not set")
    out = os.path.join(tmp, "ref-q4_k_m.gguf")
    subprocess.run([LOWBIT, "quantize", "-m", REF_MODEL, "-o", out, "--method", "q4_k_m", "--no-progress", "-t", "2"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


class Server:
    """`lowbit serve -m MODEL --port 0 ARGS`; .url, .host, .port; stop() sends SIGTERM and returns the exit code."""

    def __init__(self, model, *args, timeout=60):
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([LOWBIT, "serve", "-m", model, "--port", "0", "-t", "2", *args],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()  # printed once the model is loaded
        m = re.search(r"http://([0-9.]+):(\d+)", line)
        if not m:
            self.proc.kill()
            self.log.seek(0)
            raise RuntimeError("server did not start: %r %s" % (line, self.log.read()))
        self.host, self.port = m.group(1), int(m.group(2))
        self.url = "http://%s:%d" % (self.host, self.port)

    def stderr(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers dict, parsed JSON or text). `body`: dict (JSON-encoded), str or bytes."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        try:
            return r.status, hdrs, json.loads(data)
        except ValueError:
            return r.status, hdrs, data.decode("utf-8", "replace")

    def metrics(self, headers=None):
        _, _, text = self.request("GET", "/metrics", headers=headers)
        return {k: float(v) for k, v in re.findall(r"^(lowbit_\w+) (\S+)$", text, re.M)}


def check(cond, what):
    if not cond:
        raise AssertionError(what)
