"""Ingest: MQTT readings batches -> validated rows -> PostgreSQL with binary COPY,
acknowledged after commit; dead letters, daily partitions and the one-minute rollup,
enrollment of gateways and devices, and the accounting of every batch (``stats``)."""
