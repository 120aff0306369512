"""Analytics: the vectorized anomaly core.

Built so far: the micro-batch and event types (:mod:`analytics.batch`), the threshold
detector with persistence and hysteresis (:mod:`analytics.detectors.threshold`), the
default NEWS2 and hard-limit rules (:mod:`analytics.rules`), the engine that maps
(patient, metric) streams to slots (:mod:`analytics.engine`) and CSV replay
(:mod:`analytics.replay`). Still to come (issue 5): rate of change, personal baseline,
signal quality, river novelty, the broker-fed service with checkpoints, the evaluation.
"""
