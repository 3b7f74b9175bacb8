"""The weekly digest, end to end: a seeded database, a real SMTP server (aiosmtpd) on 127.0.0.1,
the message parsed back with the email package. Plain SMTP, STARTTLS and SSL (a trustme CA)."""

from __future__ import annotations

import email
import email.policy
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trustme
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import Session
from typer.testing import CliRunner

from alerts.digest import (
    DigestError,
    Week,
    WeekFormatError,
    build_digest,
    compose,
    preview_html,
    send,
)
from alerts.digest.assemble import _spikes
from alerts.digest.figures import HISTORY_DAYS
from alerts.digest.outbox import deliver_waiting, queue_week
from config.schema import EXAMPLE_CONFIG, Brand, DigestConfig, Settings, SmtpConfig
from listener.cli import app
from listener.models import Alert, Classification, Mention, ReplyDraft
from listener.pipeline import Pipeline
from scheduler import Daemon
from tests.services import free_port

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = "2026-W47"  # Mon 16 Nov - Sun 22 Nov 2026; Berlin is UTC+1 then
HOSTILE = "Where is my parcel? <script>alert(1)</script> & still waiting"
USER, PASSWORD = "digest-bot", "s3cret-pw"
runner = CliRunner()


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=BERLIN)


# ---------------------------------------------------------------- the seeded database


def _mention(session: Session, key: str, created: datetime, **fields: object) -> Mention:
    mention = Mention(
        source=str(fields.pop("source", "twitter")),
        collector="feed",
        native_id=key,
        text=str(fields.pop("text", f"lumora post {key}")),
        created_at=created,
        **fields,  # type: ignore[arg-type]
    )
    session.add(mention)
    session.flush()
    return mention


def _classify(
    session: Session, mention: Mention, language: str, sentiment: str, *, intent: str, urgency: str
) -> None:
    negative = {"negative": 0.9, "neutral": 0.2, "positive": 0.05}[sentiment]
    session.add(
        Classification(
            mention_id=mention.id,  # type: ignore[arg-type]
            language=language,
            sentiment=sentiment,
            score_negative=negative,
            score_neutral=0.1,
            score_positive=1 - negative,
            urgency=urgency,
            urgency_score=0.5,
            intent=intent,
            model_name="test",
            model_version="1",
        )
    )


def _draft(
    session: Session,
    mention: Mention,
    after: timedelta,
    status: str,
    reviewed_after: timedelta | None = None,
) -> None:
    session.add(
        ReplyDraft(
            mention_id=mention.id,  # type: ignore[arg-type]
            text="Sorry!",
            locale="en-US",
            formality="informal",
            intent="delivery",
            channel="public",
            language_source="mention",
            status=status,
            created_at=mention.created_at + after,
            reviewed_at=mention.created_at + reviewed_after if reviewed_after else None,
        )
    )


def _alert(
    session: Session, mention: Mention, level: str, title: str, kind: str = "alert", **fields: Any
) -> None:
    session.add(
        Alert(
            key=f"{kind}:{mention.id}:#social-alerts",
            kind=kind,
            mention_id=mention.id,
            level=level,
            channel="#social-alerts",
            title=title,
            body="",
            state=fields.pop("state", "delivered"),
            created_at=mention.created_at + timedelta(minutes=1),
            **fields,
        )
    )


@pytest.fixture
def seeded(engine):
    """W47: 7 counted mentions (6 classified: 3 negative, 1 positive, 2 urgent), 3 reviewed drafts,
    2 alerts; plus a cross-post, an own post and one just after the week. W46: 2 mentions."""
    with Session(engine) as s:
        m1 = _mention(s, "m1", berlin(17, 10), text=HOSTILE, url="https://x.com/anna/1")
        _classify(s, m1, "en", "negative", intent="delivery", urgency="high")
        m2 = _mention(
            s,
            "m2",
            berlin(18, 9),
            text="Paket seit zwei Wochen nicht angekommen, Versand eine Katastrophe",
            url="https://x.com/bernd/2",
        )
        _classify(s, m2, "de", "negative", intent="delivery", urgency="critical")
        m3 = _mention(
            s,
            "m3",
            berlin(19, 12),
            source="appstore",
            text="Je veux un remboursement, produit cassé",
            url="javascript:alert(document.cookie)",
        )
        _classify(s, m3, "fr", "negative", intent="refund_return", urgency="medium")
        m4 = _mention(s, "m4", berlin(20, 15), source="reddit", text="love my lumora lamp")
        _classify(s, m4, "en", "positive", intent="praise", urgency="low")
        m5 = _mention(s, "m5", berlin(21, 8), source="appstore", text="ルモラの使い方は？")
        _classify(s, m5, "ja", "neutral", intent="question", urgency="low")
        _mention(s, "m6", berlin(21, 9), text="not classified yet")
        m9 = _mention(s, "m9", berlin(22, 23, 30), text="late sunday post")  # 22:30 UTC
        _classify(s, m9, "en", "neutral", intent="other", urgency="low")
        # Not counted: a cross-post of m1, the brand's own post, Monday 00:30 in Berlin.
        _mention(s, "m7", berlin(17, 11), text=HOSTILE, duplicate_of_id=m1.id)
        _mention(s, "m8", berlin(17, 12), text="Winter sale!", author_handle="LumoraShop")
        _mention(s, "m10", berlin(23, 0, 30), text="next week already")
        _draft(s, m1, timedelta(minutes=30), "approved", timedelta(hours=2))
        _draft(s, m2, timedelta(hours=1), "edited", timedelta(hours=5))
        _draft(s, m3, timedelta(hours=2), "rejected", timedelta(hours=3))
        _draft(s, m4, timedelta(minutes=10), "pending")
        _alert(s, m1, "high", "HIGH delivery <b>on</b> twitter (en)")
        _alert(s, m2, "critical", "CRITICAL delivery on twitter (de)")
        # Not alerts raised: a review message, a re-raise, an alert its escalation superseded.
        _alert(s, m3, "medium", "Reply draft for review", kind="draft")
        _alert(s, m2, "critical", "Still unacknowledged after 30 min: …", kind="reraise")
        _alert(s, m3, "medium", "MEDIUM refund on appstore (fr)", state="superseded")
        p1 = _mention(s, "p1", berlin(10, 10), text="where is my order")
        _classify(s, p1, "en", "negative", intent="delivery", urgency="high")
        p2 = _mention(s, "p2", berlin(11, 10), text="great service")
        _classify(s, p2, "en", "positive", intent="praise", urgency="low")
        s.commit()
    return engine


# ---------------------------------------------------------------- a real SMTP server


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # addresses answered "550 no such user"

    async def handle_RCPT(self, _server, _session, envelope, address, _options) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server, _session, envelope) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def authenticate(self, _server, _session, _envelope, _mechanism, data) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def tls() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def smtp_server(request, tls) -> Iterator[tuple[Inbox, SmtpConfig]]:
    """security from the test's parameter (default none): plain, STARTTLS + login, SSL + login."""
    security = getattr(request, "param", "none")
    inbox, port = Inbox(), free_port()
    options: dict = {}
    if security == "starttls":
        options = {
            "tls_context": _server_context(tls),
            "require_starttls": True,
            "authenticator": inbox.authenticate,
        }
    elif security == "ssl":
        options = {
            "ssl_context": _server_context(tls),
            "authenticator": inbox.authenticate,
            "auth_require_tls": False,  # aiosmtpd only counts STARTTLS as TLS; this is TLS too
        }
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    login = {"username_env": "SMTP_USERNAME", "password_env": "SMTP_PASSWORD"}
    config = SmtpConfig(
        host="127.0.0.1",
        port=port,
        security=security,
        sender="listener@example.com",
        **(login if security != "none" else {}),
    )
    try:
        yield inbox, config
    finally:
        controller.stop()


def _digest_config(smtp: SmtpConfig) -> DigestConfig:
    return DigestConfig(
        recipients=["cs-lead@example.com", "ops@example.com"], timezone="Europe/Berlin", smtp=smtp
    )


def _week() -> Week:
    return Week.parse(WEEK, "Europe/Berlin")


def _parts(message: EmailMessage) -> tuple[str, str, dict[str, bytes]]:
    """(plain text, html, {content id: png bytes}) of a multipart/alternative digest."""
    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.get_payload()  # type: ignore[misc]
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert {image.get_content_type() for image in images} == {"image/png"}
    inline = {str(image["Content-ID"]).strip().strip("<>"): image.get_content() for image in images}
    return plain.get_content(), html_part.get_content(), inline


# ---------------------------------------------------------------- tests


def test_digest_mail_has_text_html_and_inline_charts_matching_the_database(
    seeded, settings, smtp_server
):
    inbox, smtp = smtp_server
    config = _digest_config(smtp)
    digest = build_digest(seeded, settings, _week())

    send(compose(digest, config), config)

    assert inbox.envelopes == [("listener@example.com", list(config.recipients))]
    message = inbox.messages[0]
    assert message["Subject"] == (
        "Weekly sentiment digest 2026-W47: Lumora: 7 mentions, 50.0% negative"
    )
    text, html, images = _parts(message)
    # Three charts, each a PNG that the HTML shows by its Content-ID, and nothing else.
    assert len(images) == 3
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in images.values())
    assert set(re.findall(r'src="cid:([^"]+)"', html)) == set(images)
    # The headline figures, as the database has them (see `seeded`), in both parts.
    lumora = digest.brands[0]
    now, before = lumora.current, lumora.previous
    assert (now.mentions, now.classified, now.negative, now.positive, now.urgent) == (7, 6, 3, 1, 2)
    assert (now.approved, now.edited, now.rejected) == (1, 1, 1)
    assert now.median_to_draft_s == pytest.approx(45 * 60)  # 10, 30, 60, 120 min
    assert now.median_to_approval_s == pytest.approx(3.5 * 3600)  # 2 h and 5 h
    assert (before.mentions, before.negative, before.net_sentiment) == (2, 1, 0)
    for part in (text, html):
        assert re.search(r"Mentions\s*(</td>\s*<td[^>]*>\s*<strong>)?\s*7\b", part)
        assert "+5 (+250%)" in part
        assert "50.0%" in part  # share negative
        assert "-33" in part  # net sentiment: (1 - 3) / 6
        assert "45 min" in part
        assert "3 h 30 min" in part
    assert lumora.by_source == {"twitter": 4, "appstore": 2, "reddit": 1}
    assert lumora.daily["negative"] == [0, 1, 1, 1, 0, 0, 0]
    assert lumora.alerts_by_level == {"high": 1, "critical": 1}
    # Complaints grouped by intent, quoted in their own language, with links to the originals.
    groups = {group.intent: group for group in lumora.complaint_groups}
    assert (groups["delivery"].count, groups["refund_return"].count) == (2, 1)
    assert {q.language_name for q in groups["delivery"].quotes} == {"English", "German"}
    assert "German:</span> Paket seit zwei Wochen" in html
    assert '<a href="https://x.com/bernd/2"' in html
    assert '[French] "Je veux un remboursement' in text


def test_hostile_text_is_escaped_and_only_http_links_are_links(seeded, settings):
    with Session(seeded) as s:  # a source label that would be mathtext to matplotlib
        _mention(s, "h1", berlin(19, 9), source="$\\frac{<b>}$", text="lumora?")
        s.commit()

    html = preview_html(build_digest(seeded, settings, _week()))

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; still waiting" in html
    assert "HIGH delivery &lt;b&gt;on&lt;/b&gt; twitter" in html
    assert "javascript:" not in html  # m3's stored URL is not turned into a link
    assert html.count('src="data:image/png;base64,') == 3


@pytest.mark.parametrize("smtp_server", ["starttls", "ssl"], indirect=True)
def test_digest_is_sent_over_tls_with_the_login_from_the_environment(
    seeded, settings, smtp_server, tls, monkeypatch
):
    inbox, smtp = smtp_server
    monkeypatch.setenv("SMTP_USERNAME", USER)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    config = _digest_config(smtp)

    send(compose(build_digest(seeded, settings, _week()), config), config, _client_context(tls))

    assert inbox.logins == [USER]
    assert len(inbox.messages) == 1


@pytest.mark.parametrize("smtp_server", ["starttls"], indirect=True)
def test_a_refused_login_is_a_clear_error_without_the_password(
    seeded, settings, smtp_server, tls, monkeypatch
):
    inbox, smtp = smtp_server
    monkeypatch.setenv("SMTP_USERNAME", USER)
    monkeypatch.setenv("SMTP_PASSWORD", "wrong-password")
    config = _digest_config(smtp)
    message = compose(build_digest(seeded, settings, _week()), config)

    with pytest.raises(DigestError, match="refused the login") as error:
        send(message, config, _client_context(tls))

    assert "SMTP_USERNAME / SMTP_PASSWORD" in str(error.value)
    assert "wrong-password" not in str(error.value)
    assert inbox.messages == []


def test_missing_credentials_and_clear_text_passwords_are_refused(monkeypatch):
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    monkeypatch.setenv("SMTP_USERNAME", USER)
    login = {"username_env": "SMTP_USERNAME", "password_env": "SMTP_PASSWORD"}
    config = _digest_config(SmtpConfig(host="127.0.0.1", port=free_port(), **login))
    with pytest.raises(DigestError, match="needs SMTP_PASSWORD set"):
        send(EmailMessage(), config)

    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    plain = _digest_config(SmtpConfig(host="127.0.0.1", port=1, security="none", **login))
    with pytest.raises(DigestError, match="unencrypted"):
        send(EmailMessage(), plain)

    unreachable = _digest_config(SmtpConfig(host="127.0.0.1", port=free_port(), security="none"))
    with pytest.raises(DigestError, match=r"cannot reach the SMTP server 127\.0\.0\.1"):
        send(EmailMessage(), unreachable)


def test_an_empty_week_says_so_and_has_no_charts(seeded, settings, smtp_server):
    inbox, smtp = smtp_server
    config = _digest_config(smtp)
    digest = build_digest(seeded, settings, Week.parse("2026-W40", "Europe/Berlin"))

    send(compose(digest, config), config)

    assert digest.empty
    message = inbox.messages[0]
    plain, html_part = message.get_payload()  # type: ignore[misc]
    assert html_part.get_content_type() == "text/html"  # no charts, so no related part
    for part in (plain, html_part):
        assert "No mentions were collected and no alerts were raised" in part.get_content()
    assert "no mentions" in message["Subject"]


def _config_file(tmp_path: Path, **digest: object) -> Path:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["digest"].update(digest)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_cli_preview_writes_the_digest_without_sending(seeded, tmp_path):
    out = tmp_path / "out.html"

    result = runner.invoke(app, ["digest", "--preview", str(out), "--week", WEEK])

    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "2026-W47 (Mon 16 Nov – Sun 22 Nov 2026, Europe/Berlin)" in html
    assert "&lt;script&gt;" in html


def test_cli_preview_into_a_missing_folder_is_named_before_any_work(seeded, tmp_path):
    out = tmp_path / "no-such-folder" / "out.html"

    result = runner.invoke(app, ["digest", "--preview", str(out), "--week", WEEK])

    assert result.exit_code == 2
    assert "no-such-folder does not exist" in " ".join(result.output.split())


def test_cli_send_mails_the_chosen_week(seeded, tmp_path, smtp_server):
    inbox, smtp = smtp_server
    config = _config_file(tmp_path, smtp=smtp.model_dump(exclude_none=True))

    result = runner.invoke(app, ["digest", "--send", "--week", WEEK, "--config", str(config)])

    assert result.exit_code == 0, result.output
    assert "Sent the 2026-W47 digest to cs-lead@example.com" in result.output
    assert inbox.messages[0]["Subject"].startswith("Weekly sentiment digest 2026-W47")

    again = runner.invoke(app, ["digest", "--send", "--week", WEEK, "--config", str(config)])
    assert again.exit_code == 2
    assert "2026-W47 digest was already sent" in again.output
    assert "--resend" in again.output
    assert len(inbox.messages) == 1
    resent = runner.invoke(
        app, ["digest", "--send", "--resend", "--week", WEEK, "--config", str(config)]
    )
    assert resent.exit_code == 0, resent.output
    assert len(inbox.messages) == 2


def test_a_refused_recipient_neither_holds_back_nor_repeats_the_digest(
    seeded, settings, smtp_server, tmp_path
):
    inbox, smtp = smtp_server
    inbox.refuse = {"left-the-company@example.com"}
    recipients = ["cs-lead@example.com", "left-the-company@example.com"]
    digest = DigestConfig(recipients=recipients, timezone="Europe/Berlin", smtp=smtp)
    settings = settings.model_copy(update={"digest": digest})
    weeks = [_week(), Week.parse("2026-W48", "Europe/Berlin")]
    for week in weeks:
        queue_week(seeded, week)

    first = deliver_waiting(seeded, settings)
    again = deliver_waiting(seeded, settings)  # the daemon's retry job, minutes later

    assert [(o.week, o.delivered, o.refused) for o in first] == [
        (w.label, True, ("left-the-company@example.com",)) for w in weeks
    ]
    assert "check those addresses in digest.recipients" in first[0].refusal
    assert again == []
    assert [to for _, to in inbox.envelopes] == [["cs-lead@example.com"]] * 2

    config = _config_file(tmp_path, recipients=recipients, smtp=smtp.model_dump(exclude_none=True))
    result = runner.invoke(app, ["digest", "--send", "--week", "2026-W46", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "Sent the 2026-W46 digest to cs-lead@example.com\n" in result.output
    assert "warning: the SMTP server refused left-the-company@example.com" in result.output


def test_cli_errors_name_the_problem_and_the_fix(seeded, tmp_path):
    bad_week = runner.invoke(app, ["digest", "--send", "--week", "2026-47"])
    assert bad_week.exit_code == 2
    assert "'2026-47' is not an ISO week; write it like 2026-W47" in bad_week.output

    nobody = _config_file(tmp_path, recipients=[])
    no_recipients = runner.invoke(app, ["digest", "--send", "--config", str(nobody)])
    assert no_recipients.exit_code == 2
    assert "no recipients configured: add digest.recipients" in no_recipients.output

    nothing = runner.invoke(app, ["digest"])
    assert nothing.exit_code == 2
    assert "--preview out.html" in nothing.output


def test_default_week_is_the_last_complete_iso_week_in_the_digest_time_zone():
    sunday_night_utc = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)  # Monday 00:30 in Berlin

    assert Week.last_complete(sunday_night_utc, "Europe/Berlin").label == "2026-W47"
    assert Week.last_complete(sunday_night_utc, "UTC").label == "2026-W46"
    # The week that leaves summer time is an hour longer, in UTC.
    october = Week.parse("2026-W43", "Europe/Berlin")
    assert october.end - october.start == timedelta(days=7, hours=1)
    with pytest.raises(WeekFormatError, match="2025 has no week 53"):
        Week.parse("2025-W53", "UTC")


def test_spikes_compare_each_day_with_the_usual_volume():
    daily = {(day, "neutral", "question"): 3 for day in range(HISTORY_DAYS)}  # 3 a day
    daily[(HISTORY_DAYS + 2, "negative", "delivery")] = 12  # Wednesday: 12 delivery complaints
    daily[(HISTORY_DAYS + 4, "neutral", "question")] = 4  # within the usual

    spikes, history = _spikes(daily, _week())

    assert history == HISTORY_DAYS
    assert [(s.day.isoformat(), s.what, s.count) for s in spikes] == [
        ("2026-11-18", "delivery", 12),
        ("2026-11-18", "all", 12),
    ]
    assert _spikes({(HISTORY_DAYS, "negative", "delivery"): 50}, _week()) == ([], 0)


def test_mentions_are_attributed_to_the_brand_they_name(engine, settings: Settings):
    two = settings.model_copy(
        update={"brands": [*settings.brands, Brand(name="Acme", keywords={"en": ["ac_me"]})]}
    )
    with Session(engine) as s:
        _mention(s, "a", berlin(17, 9), text="my ACME kettle broke")
        _mention(s, "b", berlin(17, 9), text="Lumora lamp is fine")
        _mention(s, "c", berlin(17, 9), text="acxme")  # `_` is not a LIKE wildcard
        s.commit()

    digest = build_digest(engine, two, _week())

    counts = {brand.brand: brand.current.mentions for brand in digest.brands}
    assert counts == {"Lumora": 1, "Acme": 1, "(no brand named)": 1}


def test_a_brand_named_in_capitals_of_another_script_is_attributed_to_it(engine, settings):
    two = settings.model_copy(
        update={"brands": [*settings.brands, Brand(name="Öko", keywords={"ru": ["эко"]})]}
    )
    with Session(engine) as s:
        _mention(s, "a", berlin(17, 9), text="ÖKO Wasserkocher kaputt")
        _mention(s, "b", berlin(17, 9), text="ЭКО чайник сломался")
        _mention(s, "c", berlin(17, 9), text="Lumora lamp is fine")
        s.commit()

    digest = build_digest(engine, two, _week())

    counts = {brand.brand: brand.current.mentions for brand in digest.brands}
    assert counts == {"Lumora": 1, "Öko": 2}


def test_complaint_groups_name_the_teams_own_keywords_too(engine, settings):
    own = settings.model_copy(
        update={
            "model": settings.model.model_copy(update={"keywords": {"safety": {"en": ["recall"]}}})
        }
    )
    with Session(engine) as s:
        for key in ("r1", "r2"):
            mention = _mention(s, key, berlin(17, 9), text="Is my Lumora kettle in the RECALL?")
            _classify(s, mention, "en", "negative", intent="safety", urgency="critical")
        s.commit()

    [plain] = build_digest(engine, settings, _week()).brands
    [with_own] = build_digest(engine, own, _week()).brands

    assert plain.complaint_groups[0].keywords == []
    assert with_own.complaint_groups[0].keywords == [("recall", "en", 2)]


def test_daemon_schedules_the_digest_in_its_time_zone_only_when_enabled(engine, settings):
    pipeline = Pipeline.build(settings, engine)
    enabled = settings.model_copy(
        update={"digest": settings.digest.model_copy(update={"enabled": True})}
    )
    for config, expected in ((settings, None), (enabled, "Europe/Berlin")):
        scheduler = BackgroundScheduler(timezone="UTC")
        Daemon(config, pipeline).schedule(scheduler)
        job = scheduler.get_job("digest")
        assert (str(job.trigger.timezone) if job else None) == expected
        assert scheduler.get_job("purge") is not None
    assert "day_of_week='mon', hour='8', minute='0'" in str(job.trigger)
