"""FHIR Subscriptions, topic-based as the R5 backport for R4 has them: what a subscriber may
ask for (:mod:`topics`), the resources and notifications (:mod:`resources`), their rows
(:mod:`store`), whom their events may reach now (:mod:`owners`), the worker that finds
events and delivers them (:mod:`finder`, :mod:`delivery`, :mod:`worker`) and the websocket
channel (:mod:`websocket`)."""
