"""Alerts: what the analytics events mean for people. The model and priorities
(``model``), the lifecycle in the database (``store``), what an alert owes to whom
(``outbox``), care teams and their tiers (``teams``), the delivery of the outbox
(``dispatch``, over ``channels``), reading alerts back (``queries``), and the
`vigil alerts` service."""
