"""Analytics: the vectorized anomaly core.

The engine (:mod:`analytics.engine`) gives each (patient, metric) stream a slot and scores
micro-batches of many gateways' readings in a few numpy passes: artefacts are marked first
(:mod:`analytics.detectors.artefacts`), then every rule's detector (one per module in
:mod:`analytics.detectors`, behind :mod:`analytics.detectors.base`) reports conditions
started, persisted and cleared; silent streams are judged by the clock
(:mod:`analytics.detectors.stale`). The rules are in :mod:`analytics.rules`, a patient's
changes to them in :mod:`analytics.config`. `vigil analytics` runs the engine on the
broker's readings (:mod:`analytics.service`, checkpointed by :mod:`analytics.checkpoint`);
`vigil analytics replay` on recordings (:mod:`analytics.replay`); the evaluation against
labelled episodes is :mod:`analytics.evaluation`.
"""
