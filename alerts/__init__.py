"""Alerts: routing rules decide who hears about a mention; sinks deliver from the outbox."""
