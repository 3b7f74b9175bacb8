"""SMTP down when the weekly digest is due: it waits, shows in status, and goes out once."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import Session

from alerts.digest.week import Week
from config.schema import DigestConfig, SmtpConfig, load_settings
from listener.enums import DeliveryState
from listener.models import DigestDelivery, utcnow
from listener.pipeline import Pipeline
from listener.status import collect_status
from scheduler import Daemon
from tests.services import free_port
from tests.test_alerts_digest import Inbox


@pytest.fixture
def daemon(engine, config_file):
    port = free_port()
    settings = load_settings(config_file)
    digest = DigestConfig(
        enabled=True,
        recipients=["cs-lead@example.com"],
        timezone="Europe/Berlin",
        smtp=SmtpConfig(host="127.0.0.1", port=port, security="none"),
    )
    settings = settings.model_copy(update={"digest": digest})
    pipeline = Pipeline.build(settings, engine)
    pipeline.run_cycle()
    return Daemon(settings, pipeline), port


def test_digest_waits_out_an_smtp_outage_and_is_delivered_once(engine, daemon):
    daemon, port = daemon
    week = Week.last_complete(utcnow(), "Europe/Berlin")

    daemon.send_digest()  # the cron fires while nothing listens on the SMTP port
    daemon.deliver_digests()  # the retry job, still down

    with Session(engine) as session:
        row = session.get(DigestDelivery, week.label)
        assert (row.state, row.attempts) == (DeliveryState.PENDING, 2)
        assert "cannot reach the SMTP server" in row.last_error
    status = collect_status(engine, daemon.settings)
    assert status["digests"]["waiting"] == [week.label]
    assert status["healthy"] is False

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        daemon.deliver_digests()  # the server is back
        daemon.deliver_digests()  # later retries find nothing to send
        daemon.send_digest()  # even the cron firing again for the same week
    finally:
        controller.stop()

    assert len(inbox.messages) == 1
    assert week.label in inbox.messages[0]["Subject"]
    with Session(engine) as session:
        row = session.get(DigestDelivery, week.label)
        assert row.state == DeliveryState.DELIVERED
        assert row.last_error is None
    assert collect_status(engine, daemon.settings)["digests"]["waiting"] == []
