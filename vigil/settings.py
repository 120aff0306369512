"""Settings for every service, read from ``VIGIL_*`` environment variables.

One flat model keeps the README's settings table and the code in step; each service reads
the fields it needs. Secrets (database and broker passwords) travel inside the URLs.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_gateway_id() -> str:
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    return f"gw-{host}"[:64]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL/TimescaleDB URL; empty: `vigil demo` starts an embedded one",
    )
    mqtt_url: str | None = Field(
        default=None,
        description="Broker URL, mqtt://user:pass@host:1883 or mqtts:// for TLS; "
        "empty: `vigil demo` starts Mosquitto (or the embedded amqtt broker)",
    )
    mqtt_ca_file: Path | None = Field(default=None, description="CA bundle for mqtts://")
    mqtt_client_cert: Path | None = Field(
        default=None, description="Client certificate (PEM) for mutual TLS"
    )
    mqtt_client_key: Path | None = Field(default=None, description="Key of the client cert")
    mqtt_session_expiry_s: int = Field(
        default=3600,
        description="How long the broker keeps a disconnected ingest session's messages",
    )
    gateway_id: str = Field(
        default_factory=_default_gateway_id, description="This gateway's id (topic and client id)"
    )
    gateway_data_dir: Path = Field(
        default=Path(".vigil/gateway"), description="Where the gateway keeps its outbox"
    )
    publish_interval_s: float = Field(
        default=1.0, description="How often the gateway seals and publishes a batch"
    )
    outbox_max_readings: int = Field(
        default=2_000_000,
        description="Readings the gateway outbox holds before it drops the oldest "
        "(about 5 days of one patient's devices)",
    )
    max_inflight_batches: int = Field(
        default=10, description="Batches published but not yet acknowledged by the broker"
    )
    gateway_release_on: Literal["commit", "puback"] = Field(
        default="commit",
        description="When the gateway forgets a batch: once ingest says it is committed, or "
        "on the broker's PUBACK (only for a platform too old to say so: a broker crash then "
        "loses what it had queued)",
    )
    gateway_confirm_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="A batch the broker took and ingest has not confirmed this long is sent "
        "again (the oldest few at a time, while no confirmation comes)",
    )
    ingest_max_messages: int = Field(
        default=500,
        description="Messages delivered to ingest and not yet stored (MQTT 5 Receive "
        "Maximum); bounds its memory under a burst",
    )
    ingest_flush_readings: int = Field(
        default=5000, description="Readings that make ingest write a micro-batch at once"
    )
    ingest_flush_ms: int = Field(
        default=50, description="Longest ingest waits to fill a micro-batch, in milliseconds"
    )
    retention_days: int = Field(
        default=0,
        description="Days of observations kept: older day partitions are dropped and older "
        "readings refused; 0: keep everything",
    )
    ingest_enrolled_only: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Ingest stores, and analytics scores, a reading only when `vigil enroll` "
        "assigned its device to its patient on its gateway (ingest dead-letters the rest, "
        "analytics drops them); auto: once any gateway is enrolled; off (the demo's open "
        "mode): whatever any gateway says",
    )
    ingest_dead_letter_max_bytes: int = Field(
        default=65536,
        ge=0,
        description="A dead letter keeps at most this much of its payload, with the whole "
        "payload's length and SHA-256",
    )
    ingest_crash_after_commits: int = Field(
        default=0,
        description="Fault testing only: ingest kills itself (SIGKILL) after this many "
        "commits, before acknowledging them; 0: never",
    )
    ingest_client_id: str = Field(
        default="vigil-ingest", description="MQTT client id of the ingest service"
    )
    ingest_share_group: str = Field(
        default="",
        description="MQTT v5 shared-subscription group, for several ingest processes; "
        "empty: one ingest with a plain subscription, which Mosquitto 2.0 keeps across "
        "broker restarts (it does not keep shared ones)",
    )
    analytics_client_id: str = Field(
        default="vigil-analytics",
        description="MQTT client id of the analytics service (a shard appends -SHARD)",
    )
    analytics_shards: int = Field(
        default=1, ge=1, description="Analytics workers splitting the gateways between them"
    )
    analytics_shard: int = Field(
        default=0, ge=0, description="Which of the analytics_shards this worker is (from 0)"
    )
    analytics_batch_ms: int = Field(
        default=100, ge=1, description="Analytics micro-batch: readings gathered this long"
    )
    analytics_checkpoint_s: float = Field(
        default=30.0, gt=0, description="How often analytics saves its detector state"
    )
    analytics_state_dir: Path = Field(
        default=Path(".vigil/analytics"), description="Where analytics keeps its checkpoints"
    )
    analytics_scale2_patients: str = Field(
        default="",
        description="Comma-separated patients scored on NEWS2 SpO2 scale 2 (hypercapnic "
        "respiratory failure, target 88-92 %)",
    )
    analytics_patients_file: Path | None = Field(
        default=None,
        description="JSON of per-patient rule changes (scale, optional and disabled rules, "
        "thresholds); see analytics/config.py",
    )
    alerts_client_id: str = Field(
        default="vigil-alerts", description="MQTT client id of the alerts service"
    )
    alerts_webhook_urls: str = Field(
        default="",
        description="Comma-separated care-team webhook URLs every alert is POSTed to (signed)",
    )
    alerts_webhook_secret: str = Field(
        default="",
        description="Shared secret of the webhooks' HMAC-SHA256 signature (X-Vigil-Signature)",
    )
    alerts_auto_resolve_s: float = Field(
        default=3600.0,
        gt=0,
        description="A medium or low alert resolves itself once clear this long (a recurrence "
        "within it is the same episode); a high one once acknowledged and clear this long",
    )
    alerts_escalate_after_s: float = Field(
        default=120.0,
        gt=0,
        description="A high-priority alert nobody acknowledges in this time goes to the next tier",
    )
    alerts_messages_file: Path | None = Field(
        default=None,
        description="JSON of what patients are told per rule, where it differs from the "
        "built-in wording (alerts/model.py)",
    )
    alerts_max_attempts: int = Field(
        default=8, ge=1, description="Delivery attempts before a notification is marked failed"
    )
    alerts_admin_urls: str = Field(
        default="",
        description="Comma-separated apprise URLs of the deployment's administrators, told "
        "once when nobody of a care team could be told of an alert; empty: only logged",
    )
    alerts_crash_after_commits: int = Field(
        default=0,
        description="Fault testing only: the alerts service kills itself (SIGKILL) after this "
        "many commits, before delivering; 0: never",
    )
    broker_password_file: Path | None = Field(
        default=None,
        description="Mosquitto password_file that `vigil enroll` writes (e.g. "
        "/etc/mosquitto/passwd); empty: it says how to set it",
    )
    broker_acl_file: Path | None = Field(
        default=None,
        description="Mosquitto acl_file that `vigil enroll` writes (e.g. /etc/mosquitto/acl)",
    )
    api_host: str = Field(default="127.0.0.1", description="Address the API listens on")
    api_port: int = Field(default=8000, description="Port the API listens on")
    api_base_url: str | None = Field(
        default=None,
        description="The API's public address (https://rpm.example), used in every link it "
        "gives (Bundle links, the CapabilityStatement), never the request's Host header; "
        "https also turns on HSTS. Unset: http://VIGIL_API_HOST:VIGIL_API_PORT",
    )
    api_max_body_bytes: int = Field(
        default=65536, ge=1024, description="Largest request body the API reads (413 past it)"
    )
    api_streams_per_principal: int = Field(
        default=5, ge=1, description="Alert streams (/alerts/stream) one principal may hold open"
    )
    api_local_hooks: bool = Field(
        default=False,
        description="Let Subscription rest-hooks call this machine and private networks "
        "(development and tests only: a hook is otherwise a way into the server's network)",
    )
    api_subscriptions_per_principal: int = Field(
        default=20, ge=1, description="Live Subscriptions one principal may hold"
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="OIDC: the identity provider's issuer (`iss`) whose bearer JWTs the API "
        "accepts, e.g. https://sso.example/realms/vigil; set with the audience and JWKS URL",
    )
    oidc_audience: str | None = Field(
        default=None, description="OIDC: the audience (`aud`) a token must name to reach the API"
    )
    oidc_jwks_url: str | None = Field(
        default=None, description="OIDC: URL of the identity provider's signing keys (JWKS)"
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
