# SPDX-License-Identifier: MIT
"""`lowbit serve` on the reference model's Q4_K_M: the OpenAI API through the official `openai` client (chat and
completions, streamed and not, stop sequences, seeds, usage, logprobs, prefix reuse, concurrency, cancellation on
disconnect) and raw HTTP for every error case of issue #13 (status code + OpenAI-style error JSON), then
authentication, the queue limit, max_tokens capping, stalled and many connections, SIGTERM, startup errors."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from serve_util import LOWBIT, REF_MODEL, Server, check, quantized_model, skip

try:
    import openai
except ImportError:
    skip("the openai package is not installed (scripts/requirements-test.txt)")


def api_error(r, status, param=None, contains=None):
    code, hdrs, body = r
    check(code == status, "expected HTTP %d, got %d: %r" % (status, code, body))
    check(isinstance(body, dict) and isinstance(body.get("error"), dict), "not an OpenAI error JSON: %r" % (body,))
    e = body["error"]
    check(isinstance(e.get("message"), str) and e["message"] and "type" in e, "error lacks message/type: %r" % e)
    if param is not None:
        check(e.get("param") == param, "error param %r, expected %r: %r" % (e.get("param"), param, e))
    for c in contains or []:
        check(c in e["message"], "error message lacks %r: %r" % (c, e["message"]))
    return hdrs


def test_openai_client(srv, model_id):
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=60)
    models = client.models.list()
    check([m.id for m in models.data] == [model_id], "models: %r" % models)

    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Tell me about Paris."}]
    r = client.chat.completions.create(model=model_id, messages=msgs, max_tokens=24, temperature=0)
    c = r.choices[0]
    check(c.message.role == "assistant" and isinstance(c.message.content, str) and c.message.content, "chat: %r" % r)
    check(c.finish_reason in ("stop", "length"), "finish_reason %r" % c.finish_reason)
    u = r.usage
    check(u.prompt_tokens > 10 and 0 < u.completion_tokens <= 24 and u.total_tokens == u.prompt_tokens + u.completion_tokens,
          "usage %r" % u)
    # Streaming gives the same greedy text, and the usage chunk when asked.
    chunks = list(client.chat.completions.create(model=model_id, messages=msgs, max_tokens=24, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    check(text == c.message.content, "streamed %r != %r" % (text, c.message.content))
    check(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == u.completion_tokens,
          "stream usage %r" % chunks[-1])
    check([ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == c.finish_reason, "stream finish_reason")
    # The same conversation again reuses the slot's cached prompt.
    r2 = client.chat.completions.create(model=model_id, messages=msgs, max_tokens=4, temperature=0)
    check(r2.usage.prompt_tokens_details.cached_tokens >= u.prompt_tokens - 1, "prefix reuse: %r" % r2.usage)

    # Completions: length, usage against /tokenize, stream equality.
    prompt = "The history of the city"
    r = client.completions.create(model=model_id, prompt=prompt, max_tokens=16, temperature=0)
    ntok = len(srv.request("POST", "/tokenize", {"content": prompt, "add_special": True})[2]["tokens"])
    check(r.usage.prompt_tokens == ntok, "prompt_tokens %d != tokenize %d" % (r.usage.prompt_tokens, ntok))
    check(r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 16, "length: %r" % r)
    full = r.choices[0].text
    s = "".join(ch.choices[0].text for ch in client.completions.create(
        model=model_id, prompt=prompt, max_tokens=16, temperature=0, stream=True) if ch.choices)
    check(s == full, "completion stream %r != %r" % (s, full))

    # Stop sequences: cut at the first occurrence, finish_reason "stop", in both modes.
    words = full.strip().split()
    check(len(words) >= 3, "greedy text too short for a stop test: %r" % full)
    stop = max(words[1:], key=len)  # cut at its first occurrence, as the server must
    expect = full[:full.index(stop)]
    r = client.completions.create(model=model_id, prompt=prompt, max_tokens=16, temperature=0, stop=[stop, "\u2603"])
    check(r.choices[0].text == expect and r.choices[0].finish_reason == "stop", "stop: %r vs %r" % (r.choices[0], expect))
    s = "".join(ch.choices[0].text for ch in client.completions.create(
        model=model_id, prompt=prompt, max_tokens=16, temperature=0, stop=stop, stream=True) if ch.choices)
    check(s == expect, "streamed stop %r vs %r" % (s, expect))

    # Seeds: the same seed gives the same sampled text; some other seed gives another.
    kw = dict(model=model_id, prompt="Once upon a time", max_tokens=20, temperature=1.0, top_p=1.0,
              extra_body={"top_k": 0, "min_p": 0})
    a = client.completions.create(seed=42, **kw).choices[0].text
    b = client.completions.create(seed=42, **kw).choices[0].text
    check(a == b, "seed 42 twice: %r vs %r" % (a, b))
    others = {client.completions.create(seed=sd, **kw).choices[0].text for sd in (1, 2, 3)}
    check(others != {a}, "different seeds all gave %r" % a)

    # Logprobs: chat (top_logprobs) and completions (logprobs=k); greedy token = best alternative.
    r = client.chat.completions.create(model=model_id, messages=msgs, max_tokens=6, temperature=0, logprobs=True,
                                       top_logprobs=3)
    lp = r.choices[0].logprobs.content
    check(len(lp) == r.usage.completion_tokens, "logprobs entries %d vs %d" % (len(lp), r.usage.completion_tokens))
    for t in lp:
        check(len(t.top_logprobs) == 3 and t.logprob <= 0, "logprob entry %r" % t)
        check(abs(t.top_logprobs[0].logprob - t.logprob) < 1e-4, "greedy token is not the top one: %r" % t)
        check(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob >= t.top_logprobs[2].logprob, "order %r" % t)
    r = client.completions.create(model=model_id, prompt=prompt, max_tokens=5, temperature=0, logprobs=2)
    l = r.choices[0].logprobs
    check(len(l.tokens) == 5 and len(l.token_logprobs) == 5 and all(len(t) <= 2 for t in l.top_logprobs),
          "completion logprobs %r" % l)
    check("".join(l.tokens) == r.choices[0].text, "logprob tokens %r vs text %r" % (l.tokens, r.choices[0].text))

    # Concurrency: more requests than slots, all complete with their own max_tokens.
    results = {}

    def one(i):
        rr = client.completions.create(model=model_id, prompt="Number %d is" % i, max_tokens=8 + i, temperature=0.7,
                                       seed=i, stream=(i % 2 == 0))
        if i % 2 == 0:
            chunks = list(rr)
            finish = [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1]
            n = sum(1 for ch in chunks if ch.choices and ch.choices[0].text)
            results[i] = (finish, n <= 8 + i)  # a chunk holds one token or more
        else:
            n = rr.usage.completion_tokens
            finish = rr.choices[0].finish_reason
            results[i] = (finish, n == 8 + i if finish == "length" else 0 <= n < 8 + i)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(len(results) == 10, "concurrent results: %r" % results)
    check(all(results[i][0] in ("stop", "length") and results[i][1] for i in range(10)), "concurrent: %r" % results)


def test_llama_endpoints(srv):
    code, _, body = srv.request("POST", "/completion", {"prompt": "The river", "n_predict": 5, "temperature": 0})
    check(code == 200 and body["tokens_predicted"] == 5 and body["stop"] is True and body["stop_type"] == "limit",
          "/completion %r" % body)
    code, _, body = srv.request("POST", "/tokenize", {"content": "Hello world", "with_pieces": True})
    ids = [t["id"] for t in body["tokens"]]
    check(code == 200 and "".join(t["piece"] for t in body["tokens"]) == "Hello world", "/tokenize %r" % body)
    code, _, body = srv.request("POST", "/detokenize", {"tokens": ids})
    check(code == 200 and body["content"] == "Hello world", "/detokenize %r" % body)
    code, _, body = srv.request("GET", "/health")
    check(code == 200 and body["status"] == "ok", "/health %r" % body)
    m = srv.metrics()
    for k in ("lowbit_requests_total", "lowbit_tokens_predicted_total", "lowbit_tokens_per_second",
              "lowbit_slots_busy", "lowbit_queue_length"):
        check(k in m, "/metrics lacks %s" % k)
    check(m["lowbit_tokens_predicted_total"] > 0, "no tokens counted")


def test_disconnect_cancels(srv):
    before = srv.metrics()["lowbit_requests_cancelled_total"]
    s = socket.create_connection((srv.host, srv.port))
    body = json.dumps({"prompt": "A long story:", "max_tokens": 900, "stream": True, "temperature": 1.0}).encode()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % len(body) + body)
    got = b""
    while got.count(b"data: ") < 3:
        got += s.recv(4096)
    s.close()
    t0 = time.time()
    while time.time() - t0 < 10:
        m = srv.metrics()
        if m["lowbit_requests_cancelled_total"] > before and m["lowbit_slots_busy"] == 0:
            break
        time.sleep(0.05)
    check(m["lowbit_requests_cancelled_total"] > before and m["lowbit_slots_busy"] == 0,
          "disconnect did not cancel: %r" % m)
    print("cancelled %.2f s after the disconnect" % (time.time() - t0))


def test_errors(srv, model_id):
    R = srv.request
    msg = [{"role": "user", "content": "hi"}]
    api_error(R("POST", "/v1/chat/completions", "{not json"), 400, contains=["not valid JSON"])
    api_error(R("POST", "/v1/chat/completions", "[1, 2]"), 400, contains=["JSON object"])
    api_error(R("POST", "/v1/chat/completions", {"messages": msg, "temperature": "hot"}), 400, "temperature")
    api_error(R("POST", "/v1/chat/completions", {"messages": msg, "max_tokens": "10"}), 400, "max_tokens")
    api_error(R("POST", "/v1/chat/completions", {"messages": msg, "max_tokens": 0}), 400, "max_tokens")
    api_error(R("POST", "/v1/chat/completions", {"messages": msg, "stream": "yes"}), 400, "stream")
    api_error(R("POST", "/v1/chat/completions", {"messages": "hi"}), 400, "messages")
    api_error(R("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": 3}]}), 400,
              "messages[0].content")
    api_error(R("POST", "/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}), 400,
              "messages[0].role")
    api_error(R("POST", "/v1/chat/completions", {"max_tokens": 5}), 400, "messages", ["missing"])
    api_error(R("POST", "/v1/completions", {"max_tokens": 5}), 400, "prompt", ["missing"])
    api_error(R("POST", "/v1/chat/completions", {"messages": []}), 400, "messages", ["empty"])
    api_error(R("POST", "/v1/chat/completions", {"model": "gpt-4o", "messages": msg}), 404, "model",
              ["gpt-4o", model_id])
    # Prompt + max_tokens beyond the context: 400 with both numbers.
    long_prompt = "word " * 1500
    ntok = len(R("POST", "/tokenize", {"content": long_prompt, "add_special": True})[2]["tokens"])
    api_error(R("POST", "/v1/completions", {"prompt": long_prompt, "max_tokens": 5}), 400, "prompt",
              [str(ntok), "1024"])
    api_error(R("POST", "/v1/completions", {"prompt": "hello", "max_tokens": 1023}), 400, "max_tokens",
              ["1023", "1027", "1024"])
    # Oversized max_tokens: capped to --max-tokens-cap (default: the context), then refused as too long.
    api_error(R("POST", "/v1/completions", {"prompt": "hello", "max_tokens": 10**12}), 400, "max_tokens",
              [str(10**12), "1024"])
    api_error(R("POST", "/v1/completions", b'{"prompt": "a' + b"a" * (9 << 20) + b'"}'), 413,
              contains=["larger than"])
    api_error(R("POST", "/v1/completions", b'{"prompt": "caf\xe9 \xff"}'), 400, contains=["UTF-8"])
    api_error(R("POST", "/v1/completions", {"prompt": "x", "temperature": -0.5}), 400, "temperature")
    api_error(R("POST", "/v1/completions", '{"prompt": "x", "temperature": NaN}'), 400, contains=["not valid JSON"])
    api_error(R("POST", "/v1/completions", {"prompt": "x", "top_p": 1.5}), 400, "top_p")
    api_error(R("POST", "/v1/completions", {"prompt": "x", "stop": [1, 2]}), 400, "stop")
    api_error(R("POST", "/v1/completions", {"prompt": ["a", "b"]}), 400, "prompt")
    api_error(R("POST", "/v1/completions", {"prompt": [1, 99999]}), 400, "prompt")
    # Fields that would change the result are refused by name.
    api_error(R("POST", "/v1/chat/completions", {"messages": msg, "n": 2}), 400, "n")
    api_error(R("POST", "/v1/chat/completions",
                {"messages": msg, "tools": [{"type": "function", "function": {"name": "f"}}]}), 400, "tools")
    api_error(R("POST", "/v1/chat/completions", {"messages": msg, "logit_bias": {"5": 10}}), 400, "logit_bias")
    api_error(R("POST", "/v1/chat/completions", {"messages": msg, "frequency_penalty": 0.5}), 400,
              "frequency_penalty")
    api_error(R("POST", "/v1/chat/completions", {"messages": msg, "response_format": {"type": "json_object"}}), 400,
              "response_format")
    api_error(R("POST", "/v1/chat/completions", {"messages": msg, "top_logprobs": 2}), 400, "top_logprobs")
    api_error(R("POST", "/v1/chat/completions", {"messages": msg, "stream_options": {"include_usage": True}}), 400,
              "stream_options")
    api_error(R("POST", "/detokenize", {"tokens": [-1]}), 400, "tokens")
    api_error(R("GET", "/v1/nothing"), 404)
    # The server is still healthy and serves after all that.
    code, _, body = R("POST", "/v1/completions", {"prompt": "ok", "max_tokens": 2})
    check(code == 200 and body["usage"]["completion_tokens"] >= 1, "after errors: %r" % body)


def test_limited_server(model):
    """--api-key, -np 1 --max-queue 0 (queue full -> 503), --max-tokens-cap, --timeout (stalled clients),
    many connections, SIGTERM with a request in flight."""
    srv = Server(model, "--api-key", "s3cret", "-np", "1", "--max-queue", "0", "--max-tokens-cap", "200",
                 "--timeout", "2")
    try:
        R = srv.request
        key = {"Authorization": "Bearer s3cret"}
        body = {"prompt": "hello", "max_tokens": 1000}
        api_error(R("POST", "/v1/completions", body), 401)
        api_error(R("POST", "/v1/completions", body, {"Authorization": "Bearer s3cres"}), 401)
        api_error(R("POST", "/v1/completions", body, {"Authorization": "Bearer s3cret-and-more"}), 401)
        api_error(R("GET", "/v1/models"), 401)
        check(R("GET", "/health")[0] == 200, "/health needs no key")
        code, _, r = R("POST", "/v1/completions", body, key)
        check(code == 200 and r["usage"]["completion_tokens"] == 200 and r["choices"][0]["finish_reason"] == "length",
              "max_tokens 1000 not capped to 200: %r" % r)
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key="s3cret", max_retries=0)
        check(client.models.list().data[0].id, "openai client with the key")
        try:
            openai.OpenAI(base_url=srv.url + "/v1", api_key="wrong", max_retries=0).models.list()
            check(False, "wrong key accepted")
        except openai.AuthenticationError:
            pass

        # One slot, no queue: a second request while one runs -> 503 + Retry-After.
        def start_stream():
            b = json.dumps({"prompt": "Long:", "max_tokens": 200, "stream": True, "temperature": 1}).encode()
            c = socket.create_connection((srv.host, srv.port))
            c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
            return c
        s = start_stream()
        s.recv(100)  # the stream has started: the slot is busy
        hdrs = api_error(R("POST", "/v1/completions", {"prompt": "x", "max_tokens": 2}, key), 503)
        check(hdrs.get("retry-after") == "1", "no Retry-After: %r" % hdrs)
        s.close()

        # A stalled client (half a request line) is dropped after --timeout; the server keeps serving.
        st = socket.create_connection((srv.host, srv.port))
        st.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
        st.settimeout(10)
        t0 = time.time()
        try:
            data = st.recv(100)
        except ConnectionResetError:
            data = b""
        check(time.time() - t0 < 8, "stalled connection kept %.1f s" % (time.time() - t0))
        st.close()
        # Many connections at once: all answered.
        codes = []

        def hit():
            codes.append(R("GET", "/health", timeout=30)[0])
        threads = [threading.Thread(target=hit) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(codes.count(200) == 100, "100 concurrent /health: %r" % sorted(set(codes)))

        # SIGTERM with a stream in flight: the stream ends (an error event or its normal end), exit 0.
        s = start_stream()
        s.recv(100)
        rc = srv.stop()
        check(rc == 0, "exit code %r after SIGTERM: %s" % (rc, srv.stderr()))
        s.settimeout(5)
        rest = b""
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                rest += d
        except (ConnectionResetError, socket.timeout):
            pass
        check(b"[DONE]" in rest or b"shutting down" in rest or rest == b"" or b"0\r\n\r\n" in rest,
              "stream at shutdown: %r" % rest[-300:])
    finally:
        srv.stop()


def test_startup_errors(tmp, model):
    # A model without a chat template and no --chat-template: exit 2 naming the flag.
    d = os.path.join(tmp, "no-template")
    os.mkdir(d)
    for f in os.listdir(REF_MODEL):
        if f != "tokenizer_config.json":
            os.symlink(os.path.join(REF_MODEL, f), os.path.join(d, f))
    cfg = json.load(open(os.path.join(REF_MODEL, "tokenizer_config.json")))
    cfg.pop("chat_template", None)
    json.dump(cfg, open(os.path.join(d, "tokenizer_config.json"), "w"))
    p = subprocess.run([LOWBIT, "serve", "-m", d, "--port", "0"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 2 and "lowbit: error:" in p.stderr and "--chat-template" in p.stderr,
          "no template: rc %d %r" % (p.returncode, p.stderr))
    p = subprocess.run([LOWBIT, "serve", "-m", model, "--port", "0", "--chat-template", "nosuch"], capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 2 and "--chat-template" in p.stderr, "bad template: rc %d %r" % (p.returncode, p.stderr))
    p = subprocess.run([LOWBIT, "serve", "-m", os.path.join(tmp, "missing.gguf"), "--port", "0"], capture_output=True,
                       text=True, timeout=60)
    check(p.returncode != 0 and "missing.gguf" in p.stderr, "missing model: rc %d %r" % (p.returncode, p.stderr))
    # With the flag the same model serves.
    srv = Server(d, "--chat-template", "llama3")
    try:
        code, _, body = srv.request("GET", "/v1/models")
        check(code == 200 and body["data"][0]["meta"]["chat_template"] == "llama3", "template flag: %r" % body)
    finally:
        check(srv.stop() == 0, "exit code")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        model = quantized_model(tmp)
        srv = Server(model, "-np", "4")
        try:
            model_id = srv.request("GET", "/v1/models")[2]["data"][0]["id"]
            t0 = time.time()
            test_openai_client(srv, model_id)
            test_llama_endpoints(srv)
            test_disconnect_cancels(srv)
            test_errors(srv, model_id)
            print("api + errors: %.1f s" % (time.time() - t0))
        finally:
            rc = srv.stop()
        check(rc == 0, "exit code %r: %s" % (rc, srv.stderr()))
        test_limited_server(model)
        test_startup_errors(tmp, model)
    print("OK")


if __name__ == "__main__":
    main()
