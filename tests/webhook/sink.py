"""An HTTPS webhook sink for the webhook tests: takes Teams and Slack posts like the real
services, checks each body, records it, and can refuse the first ones.

    sink.py --cert CHAIN.pem --key LEAF.key --schema ADAPTIVE-CARD.json --out FILE.jsonl
            [--fail-first N]
        Prints `PORT <n>` on stdout when ready; serves until stdin closes or it is killed.
        POST /teams/...: a Teams Workflows / incoming-webhook message: {"type": "message",
          "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
          "content": CARD}]}, CARD valid against the pinned Adaptive Card schema (JSON
          Schema draft-06, validated with jsonschema) with version 1.4 or 1.5, the
          versions Teams renders. Answers 202 like Workflows.
        POST /slack/...: a Slack incoming-webhook message with Block Kit `blocks`. Slack
          publishes no JSON schema for Block Kit: its documented required fields and
          limits are checked here (block types, text object types, header <= 150
          characters, section text <= 3000, <= 10 fields of <= 2000, <= 50 blocks, button
          text <= 75 and url <= 3000). Answers 200 "ok" like Slack.
        An invalid body is answered 400 (as both services do) and recorded as invalid.
        --fail-first N answers the first N posts 429 (Retry-After: 1), then 503,
        alternately, before looking at them.
        --script A,B,... plays one fault per post, in order, then serves normally:
          429 (Retry-After: 1), 500, 503, 401 (the URL's signature expired or was
          revoked: Teams Workflows and Slack answer 401/403/404 then), drop (the
          connection is cut before anything is recorded: nothing delivered), lost (the
          post is recorded, i.e. delivered, then the connection is cut before the reply:
          the client cannot know it went through), ok (served normally).
    Each post is one JSON line in FILE: {"path", "format", "valid", "errors", "body"}.
"""
import argparse
import http.server
import json
import socket
import ssl
import sys
import threading

import jsonschema

CARD_TYPE = "application/vnd.microsoft.card.adaptive"


def teams_errors(body, validator):
    errs = []
    if not isinstance(body, dict) or body.get("type") != "message":
        return ['the envelope needs "type": "message"']
    atts = body.get("attachments")
    if not isinstance(atts, list) or not atts:
        return ["the envelope needs a non-empty attachments list"]
    for a in atts:
        if a.get("contentType") != CARD_TYPE:
            errs.append(f"attachment contentType must be {CARD_TYPE}")
            continue
        card = a.get("content")
        if not isinstance(card, dict):
            errs.append("attachment content must be an Adaptive Card object")
            continue
        if card.get("version") not in ("1.4", "1.5"):
            errs.append(f"card version {card.get('version')!r} is not 1.4 or 1.5")
        errs += [f"schema: {e.message[:300]} at {list(e.absolute_path)}" for e in validator.iter_errors(card)]
    return errs


def text_object(t, where, max_len, plain_only=False):
    errs = []
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(t, dict) or t.get("type") not in kinds:
        return [f"{where}: a text object of type {'/'.join(kinds)} is required"]
    text = t.get("text")
    if not isinstance(text, str) or not text:
        errs.append(f"{where}: text is required")
    elif len(text) > max_len:
        errs.append(f"{where}: text over {max_len} characters")
    return errs


def slack_errors(body):
    if not isinstance(body, dict):
        return ["the body must be an object"]
    blocks = body.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return ["blocks is required"]
    errs = []
    if len(blocks) > 50:
        errs.append("more than 50 blocks")
    if "text" in body and not isinstance(body["text"], str):
        errs.append("text must be a string")
    for i, b in enumerate(blocks):
        kind = b.get("type")
        w = f"blocks[{i}] ({kind})"
        if kind == "header":
            errs += text_object(b.get("text"), w, 150, plain_only=True)
        elif kind == "section":
            if "text" not in b and "fields" not in b:
                errs.append(f"{w}: text or fields is required")
            if "text" in b:
                errs += text_object(b["text"], w, 3000)
            fields = b.get("fields", [])
            if len(fields) > 10:
                errs.append(f"{w}: more than 10 fields")
            for j, f in enumerate(fields):
                errs += text_object(f, f"{w}.fields[{j}]", 2000)
        elif kind == "actions":
            els = b.get("elements")
            if not isinstance(els, list) or not els or len(els) > 25:
                errs.append(f"{w}: 1 to 25 elements")
            for e in els or []:
                if e.get("type") != "button":
                    errs.append(f"{w}: only buttons are expected")
                    continue
                errs += text_object(e.get("text"), f"{w} button", 75, plain_only=True)
                url = e.get("url")
                if url is not None and (not isinstance(url, str) or len(url) > 3000):
                    errs.append(f"{w}: button url must be a string of at most 3000 characters")
        elif kind == "context":
            els = b.get("elements")
            if not isinstance(els, list) or not els or len(els) > 10:
                errs.append(f"{w}: 1 to 10 elements")
            for e in els or []:
                errs += text_object(e, w, 3000)
        elif kind == "divider":
            pass
        else:
            errs.append(f"{w}: unknown block type")
    return errs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--script", default="")
    a = ap.parse_args()
    with open(a.schema, encoding="utf-8") as f:
        validator = jsonschema.Draft6Validator(json.load(f))
    lock = threading.Lock()
    state = {"fail_left": a.fail_first, "failed": 0,
             "script": [t.strip() for t in a.script.split(",") if t.strip()]}
    for t in state["script"]:
        if t not in ("429", "500", "503", "401", "drop", "lost", "ok"):
            sys.exit(f"--script: unknown step {t!r}")

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code, text, headers=()):
            data = text.encode()
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def cut(self):
            """Closes the connection without a reply."""
            self.close_connection = True
            try:
                self.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                step = state["script"].pop(0) if state["script"] else "ok"
            if step == "drop":
                return self.cut()
            if step == "429":
                return self.reply(429, "Too Many Requests", [("Retry-After", "1")])
            if step in ("500", "503"):
                return self.reply(int(step), "Service Unavailable" if step == "503" else "Internal Server Error")
            if step == "401":
                return self.reply(401, '{"error":{"code":"Unauthorized","message":"The signature of the webhook URL is not valid or has expired."}}')
            with lock:
                if state["fail_left"] > 0:
                    state["fail_left"] -= 1
                    state["failed"] += 1
                    if state["failed"] % 2 == 1:
                        return self.reply(429, "Too Many Requests", [("Retry-After", "1")])
                    return self.reply(503, "Service Unavailable")
            fmt = "teams" if self.path.startswith("/teams/") else "slack" if self.path.startswith("/slack/") else None
            try:
                body = json.loads(raw)
            except ValueError as e:
                body, errs = None, [f"not JSON: {e}"]
            else:
                if fmt == "teams":
                    errs = teams_errors(body, validator)
                elif fmt == "slack":
                    errs = slack_errors(body)
                else:
                    errs = ["unknown path"]
            with lock, open(a.out, "a", encoding="utf-8") as f:
                f.write(json.dumps({"path": self.path, "format": fmt, "valid": not errs, "errors": errs, "body": body}) + "\n")
            if errs:
                return self.reply(400, "invalid_payload: " + "; ".join(errs)[:500])
            if step == "lost":
                return self.cut()
            if fmt == "teams":
                return self.reply(202, "")
            return self.reply(200, "ok")

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # a cut connection is the point of drop and lost

    srv = Server(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(f"PORT {srv.server_address[1]}", flush=True)
    sys.stdin.read()
    srv.shutdown()


if __name__ == "__main__":
    main()
