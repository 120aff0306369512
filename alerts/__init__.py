"""Alerts: model and lifecycle, routing, escalation, the notification outbox and channels.
Not built yet: it depends on the analytics events and is its own issue."""
