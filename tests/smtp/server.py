"""A real SMTP server for the mail tests (aiosmtpd): STARTTLS required, AUTH
PLAIN/LOGIN required and checked, every accepted message delivered into a Maildir.

    server.py serve --maildir DIR --cert LEAF.pem --key LEAF.key --user U --password-env VAR
                    [--refuse-first N] [--refuse-code 451] [--implicit-tls]
        Prints `PORT <n>` on stdout when ready; runs until stdin closes or it is killed.
        Each stored message gets X-Test-* headers on top: the envelope sender and
        recipients, the authenticated user and whether the session was under TLS.
        --refuse-first N answers the first N DATA commands with a 4xx (transient).
        --implicit-tls serves TLS from the first byte (smtps) instead of STARTTLS.

    server.py dump --maildir DIR
        Prints every stored message as JSON (parsed with Python's email package).
"""
import argparse
import asyncio
import email
import email.policy
import json
import logging
import mailbox
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, maildir, refuse_first, refuse_code):
        self.box = mailbox.Maildir(maildir, create=True)
        self.refuse_left = refuse_first
        self.refuse_code = refuse_code
        self.data_commands = 0

    async def handle_DATA(self, server, session, envelope):
        self.data_commands += 1
        if self.refuse_left > 0:
            self.refuse_left -= 1
            return f"{self.refuse_code} 4.3.0 try again later (test refusal)"
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        user = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else ""
        top = (
            f"X-Test-Mail-From: {envelope.mail_from}\r\n"
            f"X-Test-Rcpt-To: {','.join(envelope.rcpt_tos)}\r\n"
            f"X-Test-Auth-User: {user}\r\n"
            f"X-Test-TLS: {'yes' if tls else 'no'}\r\n"
        ).encode()
        self.box.add(top + envelope.original_content)
        return "250 2.0.0 stored"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return check


async def serve(args):
    # Failed handshakes are part of the tests; keep their tracebacks out of the output.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="Session.login_data")
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)
    password = os.environ[args.password_env]
    handler = Handler(args.maildir, args.refuse_first, args.refuse_code)

    def factory():
        # With implicit TLS the whole connection is TLS, but aiosmtpd only knows about
        # STARTTLS: its AUTH-needs-TLS check must be off there.
        tls = (
            {"auth_require_tls": False}
            if args.implicit_tls
            else {"tls_context": ctx, "require_starttls": True, "auth_require_tls": True}
        )
        return SMTP(
            handler,
            hostname="localhost",
            authenticator=authenticator(args.user, password),
            auth_required=True,
            **tls,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, host="127.0.0.1", port=0, ssl=ctx if args.implicit_tls else None
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    # Stop when the test closes our stdin (or kills us).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


def dump(args):
    box = mailbox.Maildir(args.maildir, create=True)
    out = []
    for key in sorted(box.keys()):
        raw = box.get_bytes(key)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        headers = {}
        for name, value in msg.raw_items():
            headers.setdefault(name.lower(), []).append(str(value))
        text = html = None
        attachments = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            disp = part.get_content_disposition()
            if disp == "attachment":
                payload = part.get_payload(decode=True) or b""
                attachments.append(
                    {
                        "filename": part.get_filename(),
                        "content_type": part.get_content_type(),
                        "content": payload.decode("utf-8", "replace"),
                    }
                )
            elif part.get_content_type() == "text/plain" and text is None:
                text = part.get_content()
            elif part.get_content_type() == "text/html" and html is None:
                html = part.get_content()
        out.append(
            {
                "mail_from": msg["X-Test-Mail-From"],
                "rcpt_to": [r for r in str(msg["X-Test-Rcpt-To"] or "").split(",") if r],
                "auth_user": msg["X-Test-Auth-User"],
                "tls": msg["X-Test-TLS"],
                "subject": str(msg["Subject"]),
                "headers": headers,
                "raw_head": raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace"),
                "text": text,
                "html": html,
                "attachments": attachments,
            }
        )
    json.dump(out, sys.stdout)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--maildir", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--user", required=True)
    s.add_argument("--password-env", required=True)
    s.add_argument("--refuse-first", type=int, default=0)
    s.add_argument("--refuse-code", type=int, default=451)
    s.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (smtps)")
    d = sub.add_parser("dump")
    d.add_argument("--maildir", required=True)
    args = p.parse_args()
    if args.cmd == "serve":
        asyncio.run(serve(args))
    else:
        dump(args)


if __name__ == "__main__":
    main()
