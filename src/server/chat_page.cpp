// SPDX-License-Identifier: MIT
// The chat page at GET /: one HTML document, no external assets. It keeps the conversation in the page, posts it
// to /v1/chat/completions with stream: true, appends the streamed deltas and shows tokens/s.
#include "server/server.h"

namespace lowbit::server {

const char* chat_page_html() {
    return R"HTML(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>lowbit chat</title>
<style>
body{font-family:system-ui,sans-serif;max-width:52rem;margin:0 auto;padding:1rem;background:#fafafa;color:#222}
#log{min-height:50vh;border:1px solid #ccc;background:#fff;padding:.5rem;overflow-y:auto;white-space:pre-wrap}
.msg{margin:.4rem 0;padding:.4rem .6rem;border-radius:.4rem}.user{background:#e8f0fe}.assistant{background:#f1f1f1}
.error{background:#fde8e8;color:#900}#bar{display:flex;gap:.5rem;margin-top:.5rem}#prompt{flex:1;min-height:3rem}
#opts{margin-top:.5rem;font-size:.9rem;display:flex;gap:1rem;flex-wrap:wrap;align-items:center}#stats{color:#555}
input[type=number]{width:5rem}
</style></head><body>
<h1>lowbit chat <small id="model" style="font-size:.5em;color:#666"></small></h1>
<div id="log"></div>
<div id="bar"><textarea id="prompt" placeholder="Type a message (Enter sends, Shift+Enter for a new line)"></textarea>
<button id="send">Send</button><button id="stop" disabled>Stop</button></div>
<div id="opts">
<label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.8"></label>
<label>max tokens <input id="max_tokens" type="number" min="1" step="1" value="256"></label>
<label>API key <input id="api_key" type="password" size="12"></label>
<button id="clear">New chat</button><span id="stats"></span></div>
<script>
"use strict";
const $ = id => document.getElementById(id);
let history = [], controller = null;
fetch("/v1/models").then(r => r.json()).then(j => { if (j.data) $("model").textContent = j.data[0].id; }).catch(() => {});
function add(role, text) {
  const d = document.createElement("div"); d.className = "msg " + role; d.textContent = text;
  $("log").appendChild(d); $("log").scrollTop = $("log").scrollHeight; return d;
}
function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("api_key").value) h["Authorization"] = "Bearer " + $("api_key").value;
  return h;
}
async function send() {
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  $("prompt").value = ""; add("user", text); history.push({role: "user", content: text});
  const out = add("assistant", ""); out.id = "reply-" + history.length;
  controller = new AbortController(); $("send").disabled = true; $("stop").disabled = false;
  const body = {messages: history, stream: true, stream_options: {include_usage: true},
                temperature: parseFloat($("temperature").value), max_tokens: parseInt($("max_tokens").value, 10)};
  let reply = "", n = 0, t0 = performance.now(), tFirst = 0;
  try {
    const r = await fetch("/v1/chat/completions", {method: "POST", headers: headers(), body: JSON.stringify(body),
                                                   signal: controller.signal});
    if (!r.ok) { const j = await r.json().catch(() => ({})); throw new Error((j.error && j.error.message) || r.statusText); }
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += dec.decode(value, {stream: true});
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, i); buf = buf.slice(i + 2);
        if (!ev.startsWith("data: ")) continue;
        const data = ev.slice(6);
        if (data === "[DONE]") continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        if (j.usage) n = j.usage.completion_tokens;
        const c = j.choices && j.choices[0];
        if (c && c.delta && c.delta.content) {
          if (!tFirst) tFirst = performance.now();
          reply += c.delta.content; out.textContent = reply; if (!j.usage) n++;
          const s = (performance.now() - tFirst) / 1000;
          $("stats").textContent = n + " tokens" + (s > 0 ? ", " + (n / s).toFixed(1) + " tokens/s" : "");
        }
      }
    }
    const s = (performance.now() - (tFirst || t0)) / 1000;
    $("stats").textContent = n + " tokens, " + (s > 0 ? (n / s).toFixed(1) : "-") + " tokens/s";
    history.push({role: "assistant", content: reply});
    out.classList.add("done");
  } catch (e) {
    if (e.name !== "AbortError") { out.className = "msg error"; out.textContent = "error: " + e.message; history.pop(); }
    else { history.push({role: "assistant", content: reply}); }
  } finally {
    controller = null; $("send").disabled = false; $("stop").disabled = true;
  }
}
$("send").onclick = send;
$("stop").onclick = () => { if (controller) controller.abort(); };
$("clear").onclick = () => { history = []; $("log").textContent = ""; $("stats").textContent = ""; };
$("prompt").addEventListener("keydown", e => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); } });
</script></body></html>
)HTML";
}

} // namespace lowbit::server
