#!/usr/bin/env python3
"""Opens a shop page in headless chromium and clicks its first "Buy" button,
as a person would (a mouse press and release at the button), then prints
what the browser shows after the form is submitted, as JSON:
{"forms": n, "links": n, "method": ..., "url": ..., "text": ...}.

Drives chromium over --remote-debugging-pipe (the DevTools protocol as
NUL-terminated JSON on file descriptors 3 and 4), so it needs nothing but
chromium and Python. Used by test_shop_browser.sh.

The top-up donor's page (test_topup_browser.sh) is clicked the same way:
its first amount button, a form posting to FORM_PATH (default
/purchasePlan, the shop's).

usage: shop_click.py SHOP_URL PROFILE_DIR LOG_FILE [FORM_PATH]"""
import json
import os
import subprocess
import sys
import time

url, profile, log = sys.argv[1:4]
form_path = sys.argv[4] if len(sys.argv) > 4 else "/purchasePlan"
to_chrome_r, to_chrome_w = os.pipe()
from_chrome_r, from_chrome_w = os.pipe()


def setup():
    # chromium reads commands on fd 3 and writes answers on fd 4 (kept
    # open: close_fds=False would close them after this runs)
    os.dup2(to_chrome_r, 3)  # may be 3 already: dup2 then keeps close-on-exec
    os.dup2(from_chrome_w, 4)
    os.set_inheritable(3, True)
    os.set_inheritable(4, True)


proc = subprocess.Popen(
    ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
     "--no-first-run", "--disable-background-networking", "--disable-component-update",
     "--disable-sync", "--disable-dev-shm-usage", "--remote-debugging-pipe",
     "--user-data-dir=" + profile, "about:blank"],
    stdout=open(log, "ab"), stderr=subprocess.STDOUT, close_fds=False, preexec_fn=setup)
os.close(to_chrome_r)
os.close(from_chrome_w)
out = os.fdopen(to_chrome_w, "wb")
inp = os.fdopen(from_chrome_r, "rb")
pending = b""
events = []
next_id = 0
deadline = time.monotonic() + 60


def read_message():
    global pending
    while b"\0" not in pending:
        if time.monotonic() > deadline:
            raise SystemExit("chromium: no answer within 60 s")
        chunk = os.read(inp.fileno(), 65536)
        if not chunk:
            raise SystemExit("chromium closed the pipe")
        pending += chunk
    msg, pending = pending.split(b"\0", 1)
    return json.loads(msg)


def send(method, params=None, session=None):
    global next_id
    next_id += 1
    m = {"id": next_id, "method": method, "params": params or {}}
    if session:
        m["sessionId"] = session
    out.write(json.dumps(m).encode() + b"\0")
    out.flush()
    while True:
        r = read_message()
        if r.get("id") == next_id:
            if "error" in r:
                raise SystemExit("%s: %s" % (method, r["error"]))
            return r.get("result", {})
        events.append(r)


def wait_event(name, session, want=lambda e: True):
    while True:
        for i, e in enumerate(events):
            if e.get("method") == name and e.get("sessionId") == session and want(e):
                return events.pop(i)
        events.append(read_message())


def evaluate(expr, session):
    r = send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)
    return r.get("result", {}).get("value")


try:
    target = send("Target.createTarget", {"url": "about:blank"})["targetId"]
    s = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    send("Page.enable", {}, s)
    send("Network.enable", {}, s)
    send("Page.navigate", {"url": url}, s)
    wait_event("Page.loadEventFired", s)
    forms = evaluate("document.querySelectorAll('form[method=post] button.buy').length", s)
    links = evaluate("document.querySelectorAll('a[href*=purchasePlan]').length", s)
    box = evaluate("JSON.stringify(document.querySelector('form[method=post] button.buy')"
                   ".getBoundingClientRect())", s)
    result = {"forms": forms, "links": links}
    if box:
        send("Page.bringToFront", {}, s)
        # scroll the button into view first if the page is long
        evaluate("document.querySelector('form[method=post] button.buy').scrollIntoView()", s)
        b = json.loads(evaluate("JSON.stringify(document.querySelector("
                                "'form[method=post] button.buy').getBoundingClientRect())", s))
        x, y = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
        events.clear()
        for kind in ("mousePressed", "mouseReleased"):
            send("Input.dispatchMouseEvent",
                 {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}, s)
        # the form's request, then the page it answered
        req = wait_event("Network.requestWillBeSent", s,
                         lambda e: form_path in e["params"]["request"]["url"])
        result["method"] = req["params"]["request"]["method"]
        result["url"] = req["params"]["request"]["url"]
        result["postData"] = req["params"]["request"].get("postData", "")
        wait_event("Page.loadEventFired", s)
        result["text"] = evaluate("document.body ? document.body.innerText : ''", s)
    print(json.dumps(result))
finally:
    try:
        send("Browser.close")
    except BaseException:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
