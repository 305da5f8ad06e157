#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Load generator of bench/serve_load.sh: CLIENTS threads each send requests to an OpenAI-compatible server
(/v1/completions) until REQUESTS have been sent in all; prompts and max_tokens of mixed lengths (seeded), half of
them streamed (SSE, include_usage). Prints one JSON line: failures, p50/p99 time-to-first-token and latency (ms),
generated tokens, wall seconds, aggregate generated tokens/s. TTFT of a non-streamed request = its latency.
Usage: serve_load.py URL --clients 64 --requests 1000 [--min-tokens 8 --max-tokens 96] [--stream-share 0.5]
       [--prompt-words LO HI] [--seed 1] [--model ID]"""
import argparse
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

WORDS = ("the of and in to a was is for on as by with he that at from his it an were are which this also be has "
         "had first one their its new after who they have her she two been other when there all during into "
         "school time may years more most only over city such can would some where between later people state "
         "world river music film house war family early history known several under many while part area").split()


def percentile(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def one_request(host, port, body, stream, timeout):
    """(ok, ttft_s, latency_s, tokens, error)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            return False, 0, 0, 0, "HTTP %d %s" % (r.status, r.read()[:200])
        if not stream:
            j = json.loads(r.read())
            t = time.perf_counter() - t0
            return True, t, t, j["usage"]["completion_tokens"], None
        ttft = None
        tokens = None
        chunks = 0
        done = False
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                done = True
                break
            j = json.loads(data)
            if "error" in j:
                return False, 0, 0, 0, "stream error %s" % j["error"]
            if j.get("usage"):
                tokens = j["usage"]["completion_tokens"]
            if j.get("choices") and j["choices"][0].get("text"):
                chunks += 1
                if ttft is None:
                    ttft = time.perf_counter() - t0
        t = time.perf_counter() - t0
        if not done:
            return False, 0, 0, 0, "stream ended without [DONE]"
        return True, ttft if ttft is not None else t, t, tokens if tokens is not None else chunks, None
    except Exception as e:  # a failure of the run, counted and reported
        return False, 0, 0, 0, "%s: %s" % (type(e).__name__, e)
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--min-tokens", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--prompt-words", type=int, nargs=2, default=[4, 200])
    ap.add_argument("--stream-share", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", default=None)
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    rng = random.Random(a.seed)
    jobs = []
    for i in range(a.requests):
        n_words = rng.randint(*a.prompt_words)
        body = {"prompt": " ".join(rng.choice(WORDS) for _ in range(n_words)),
                "max_tokens": rng.randint(a.min_tokens, a.max_tokens), "temperature": 0.8, "seed": i}
        if a.model:
            body["model"] = a.model
        stream = rng.random() < a.stream_share
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        jobs.append((body, stream))
    lock = threading.Lock()
    results = []
    errors = {}
    next_job = [0]

    def worker():
        while True:
            with lock:
                i = next_job[0]
                if i >= len(jobs):
                    return
                next_job[0] += 1
            res = one_request(u.hostname, u.port, jobs[i][0], jobs[i][1], a.timeout)
            with lock:
                results.append(res)
                if not res[0]:
                    errors[res[4]] = errors.get(res[4], 0) + 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = [r for r in results if r[0]]
    tokens = sum(r[3] for r in ok)
    out = {"clients": a.clients, "requests": len(results), "failures": len(results) - len(ok),
           "ttft_p50_ms": 1000 * percentile([r[1] for r in ok], 0.5),
           "ttft_p99_ms": 1000 * percentile([r[1] for r in ok], 0.99),
           "latency_p50_ms": 1000 * percentile([r[2] for r in ok], 0.5),
           "latency_p99_ms": 1000 * percentile([r[2] for r in ok], 0.99),
           "generated_tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall if wall > 0 else 0.0,
           "errors": dict(list(errors.items())[:5])}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
