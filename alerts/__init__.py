"""Alerts: what the analytics events mean for people. The model and priorities
(``model``), the lifecycle in the database with its notification outbox (``store``), care
teams and their tiers (``teams``), the dispatcher that delivers the outbox (``dispatch``),
and the `vigil alerts` service."""
