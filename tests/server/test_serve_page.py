# SPDX-License-Identifier: MIT
"""The chat page of `lowbit serve` (GET /) in headless Chromium through selenium + chromedriver: it loads with no
external assets, a typed prompt gets a streamed reply (the text grows while the request runs), tokens/s is shown,
and the temperature / max tokens fields reach the request (max tokens 1 gives a one-token reply)."""
import os
import shutil
import tempfile
import time

from serve_util import Server, check, quantized_model, skip

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    skip("selenium is not installed (scripts/requirements-test.txt)")


def find_exe(*names):
    for n in names:
        p = shutil.which(n) or (n if os.path.exists(n) else None)
        if p:
            return p
    return None


def main():
    chromium = find_exe("chromium", "chromium-browser", "google-chrome")
    driver_exe = find_exe("chromedriver", "/usr/lib/chromium/chromedriver")
    if not chromium or not driver_exe:
        skip("chromium / chromedriver not installed (scripts/install-deps.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        model = quantized_model(tmp)
        srv = Server(model, "-np", "2")
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--user-data-dir=" + os.path.join(tmp, "profile")):
            opts.add_argument(a)
        drv = webdriver.Chrome(service=Service(driver_exe), options=opts)
        try:
            drv.set_page_load_timeout(30)
            drv.get(srv.url + "/")
            check("lowbit chat" in drv.title, "title %r" % drv.title)
            # No external assets: every resource the page loaded came from the server itself.
            urls = drv.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
            check(all(u.startswith(srv.url) for u in urls), "external resources: %r" % urls)
            wait = WebDriverWait(drv, 60, poll_frequency=0.02)
            wait.until(lambda d: d.find_element(By.ID, "model").text != "")
            check(drv.find_element(By.ID, "model").text.endswith(".gguf"), "model name not shown")

            temp = drv.find_element(By.ID, "temperature")
            temp.clear()
            temp.send_keys("0")
            mx = drv.find_element(By.ID, "max_tokens")
            mx.clear()
            mx.send_keys("200")
            drv.find_element(By.ID, "prompt").send_keys("Tell me about the history of Paris.")
            drv.find_element(By.ID, "send").click()
            # Streamed: the reply is seen non-empty and still growing before it is done.
            lengths = []
            t0 = time.time()
            while time.time() - t0 < 60:
                el = drv.find_elements(By.CSS_SELECTOR, ".msg.assistant")
                if el:
                    lengths.append(len(el[-1].text))
                    if "done" in el[-1].get_attribute("class"):
                        break
                time.sleep(0.01)
            reply = drv.find_elements(By.CSS_SELECTOR, ".msg.assistant")[-1]
            check("done" in reply.get_attribute("class"), "reply did not finish: %r" % reply.text)
            partial = [n for n in lengths[:-1] if 0 < n < lengths[-1]]
            check(len(set(partial)) >= 2, "reply not streamed (lengths seen: %r)" % sorted(set(lengths)))
            check(len(reply.text) > 20, "short reply %r" % reply.text)
            stats = drv.find_element(By.ID, "stats").text
            check("tokens/s" in stats, "no tokens/s: %r" % stats)
            check(srv.request("GET", "/v1/models")[0] == 200, "server alive")

            # The settings reach the request: max tokens 1 -> one token; the conversation grows to 2 replies.
            mx.clear()
            mx.send_keys("1")
            drv.find_element(By.ID, "prompt").send_keys("And London?")
            drv.find_element(By.ID, "send").click()
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant.done")) == 2)
            check(drv.find_element(By.ID, "stats").text.startswith("1 tokens"),
                  "max tokens 1: %r" % drv.find_element(By.ID, "stats").text)
            print("reply:", reply.text[:80].replace("\n", " "), "|", stats)
        finally:
            drv.quit()
            rc = srv.stop()
        check(rc == 0, "server exit code %r" % rc)
    print("OK")


if __name__ == "__main__":
    main()
