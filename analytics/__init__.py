"""Analytics: the vectorized anomaly core (per-stream state arrays, the detector bank, the
scoring engine, replay). Not built yet: the foundation stores and serves readings; the
anomaly core is its own issue and starts from the metric catalogue and the wire contract."""
