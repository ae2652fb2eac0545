"""Sending a notification by e-mail over SMTP (the standard library's smtplib)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: bool  # smtps: TLS from the first byte
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpServer:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://[user:password@]host[:port] or smtps://…")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise ValueError("SMTP_URL has a port that is not a number from 1 to 65535.") from None
    return SmtpServer(parts.hostname, port, parts.scheme == "smtps",
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password else None)


def send(url: str, sender: str, messages: list[tuple[str, str, str]]) -> list[str | None]:
    """Send (to, subject, body) messages over one connection: per message, None or why the server
    refused it. Raises OSError / SMTPException when the server cannot be reached or talked to."""
    server = parse_smtp_url(url)
    context = ssl.create_default_context()
    if server.tls:
        client = smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT_SECONDS, context=context)
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_SECONDS)
    with client:
        if not server.tls:
            client.ehlo()
            if client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
        if server.username:
            client.login(server.username, server.password or "")
        outcomes: list[str | None] = []
        for to, subject, body in messages:
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = sender, to, subject
            message.set_content(body)
            try:
                client.send_message(message)
                outcomes.append(None)
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
                outcomes.append(f"{type(exc).__name__}: {exc}"[:500])
        return outcomes
