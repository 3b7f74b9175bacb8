"""The digest as a MIME message, and its delivery over SMTP (STARTTLS, SSL or plain).

Shape: multipart/alternative [text/plain, multipart/related [text/html, image/png …]]; the HTML
refers to each chart as `cid:`, so mail clients show them inline without fetching anything.
Credentials come from the environment variables the config names, never from the config itself.
"""

from __future__ import annotations

import base64
import logging
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from alerts.digest.assemble import Digest
from alerts.digest.charts import draw_charts
from alerts.digest.render import render_html, render_text, subject
from config.schema import DigestConfig, SmtpConfig

log = logging.getLogger(__name__)
TIMEOUT_S = 30


class DigestError(Exception):
    """The digest cannot be sent; the message names the problem and the fix."""


def preview_html(digest: Digest) -> str:
    """The HTML of the mail with charts as data: URLs, to open in a browser."""
    charts = draw_charts(digest)

    def data_url(name: str) -> str:
        return "data:image/png;base64," + base64.b64encode(charts[name]).decode("ascii")

    return render_html(digest, data_url, charts)


def compose(digest: Digest, config: DigestConfig) -> EmailMessage:
    charts = draw_charts(digest)
    cids = {name: make_msgid(idstring=name, domain="listener.digest") for name in charts}
    html = render_html(digest, lambda name: "cid:" + cids[name][1:-1], charts)
    message = EmailMessage()
    message["Subject"] = subject(digest)
    message["From"] = config.smtp.sender
    message["To"] = ", ".join(config.recipients)
    message["Date"] = format_datetime(digest.generated_at)
    message["Message-ID"] = make_msgid(idstring=digest.week.label, domain="listener.digest")
    message.set_content(render_text(digest))
    message.add_alternative(html, subtype="html")
    html_part = message.get_payload()[1]  # type: ignore[index]
    for name, png in charts.items():
        html_part.add_related(png, "image", "png", cid=cids[name], filename=f"{name}.png")
    return message


def _credentials(smtp: SmtpConfig) -> tuple[str, str] | None:
    if not smtp.username_env and not smtp.password_env:
        return None
    missing = [
        name
        for name in (smtp.username_env, smtp.password_env)
        if not name or not os.environ.get(name)
    ]
    if missing:
        raise DigestError(
            f"SMTP login needs {' and '.join(str(m) for m in missing)} set in the environment"
            " (digest.smtp.username_env / password_env name them); set them, or remove both"
            " keys for a relay that needs no login"
        )
    if smtp.security == "none":
        raise DigestError(
            "digest.smtp.security is 'none', which would send the SMTP password unencrypted;"
            " use starttls (usually port 587) or ssl (usually port 465)"
        )
    return os.environ[str(smtp.username_env)], os.environ[str(smtp.password_env)]


def _connect(smtp: SmtpConfig, context: ssl.SSLContext) -> smtplib.SMTP:
    if smtp.security == "ssl":
        return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=TIMEOUT_S, context=context)
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT_S)
    if smtp.security == "starttls":
        try:
            client.starttls(context=context)
        except smtplib.SMTPNotSupportedError:
            client.close()
            raise DigestError(
                f"{smtp.host}:{smtp.port} does not offer STARTTLS; use security ssl (port 465),"
                " or none for a trusted local relay"
            ) from None
    return client


def send(
    message: EmailMessage, config: DigestConfig, context: ssl.SSLContext | None = None
) -> list[str]:
    """Deliver to every recipient the server accepts; return the ones it refused (sorted).

    Raise DigestError, saying why, when nobody received it. Some recipients refused is not a
    failure to retry: the others have the digest, and sending it again would repeat it to them.
    `context` verifies the server's certificate (default: the system's trust store).
    """
    if not config.recipients:
        raise DigestError("digest.recipients is empty: add who should receive the digest")
    smtp = config.smtp
    credentials = _credentials(smtp)
    where = f"{smtp.host}:{smtp.port} ({smtp.security})"
    try:
        with _connect(smtp, context or ssl.create_default_context()) as client:
            if credentials:
                client.login(*credentials)
            refused = client.send_message(message, to_addrs=list(config.recipients))
    except smtplib.SMTPAuthenticationError as error:
        raise DigestError(
            f"the SMTP server {where} refused the login ({error.smtp_code}): check the user"
            f" and password in {smtp.username_env} / {smtp.password_env}"
        ) from None
    except smtplib.SMTPRecipientsRefused as error:
        raise DigestError(
            f"the SMTP server {where} refused every recipient: {sorted(error.recipients)}"
        ) from None
    except (smtplib.SMTPException, ssl.SSLError) as error:
        raise DigestError(f"sending through {where} failed: {error}") from None
    except OSError as error:
        raise DigestError(
            f"cannot reach the SMTP server {where}: {error.strerror or error};"
            " check digest.smtp.host, port and security"
        ) from None
    accepted = len(config.recipients) - len(refused)
    log.info("digest %s sent to %d recipient(s)", message["Subject"], accepted)
    return sorted(refused)
