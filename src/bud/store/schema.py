"""Tables, in SQLAlchemy Core: one schema for SQLite and PostgreSQL.

Times are epoch seconds (double precision) so both engines compare and sort them the same.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()
Json = JSON().with_variant(JSONB(), "postgresql")
Id = String(64)
Seq = BigInteger().with_variant(Integer(), "sqlite")  # INTEGER PRIMARY KEY autoincrements in SQLite

meta = Table(
    "bud_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

event_types = Table(
    "event_types",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("schema", Json, nullable=False),
    Column("example", Json, nullable=False),
    Column("created_at", Float, nullable=False),
)

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(256), nullable=False),
    Column("description", Text),
    Column("version", Integer, nullable=False),
    Column("definition", Json, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

pipeline_versions = Table(
    "pipeline_versions",
    metadata,
    Column("pipeline_id", Id, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("name", String(256), nullable=False),
    Column("definition", Json, nullable=False),
    Column("created_at", Float, nullable=False),
)

triggers = Table(
    "triggers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("pipeline_id", Id, nullable=False, index=True),
    Column("event_type", String(128), nullable=False, index=True),
    Column("name", String(256)),
    Column("description", Text),
    Column("filter", Json, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("fire_count", Integer, nullable=False, default=0),
    Column("last_fired_at", Float),
    Column("flow", Json),  # flow control: dedup, rate_limit, debounce, concurrency, circuit_breaker
    Column("tripped_at", Float),
    Column("tripped_reason", Text),
    Column("schedule", Json),  # a schedule trigger: {"cron", "timezone"} or {"interval_seconds"}
)

# When each schedule trigger's next tick is due (claimed with a conditional update).
trigger_schedules = Table(
    "trigger_schedules",
    metadata,
    Column("trigger_id", Id, primary_key=True),
    Column("next_at", Float, index=True),  # NULL: nothing due (the trigger is disabled)
    Column("last_tick_at", Float),  # the scheduled time of the last tick fired
    Column("last_fired_at", Float),
    Column("ticks", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),  # missed ticks not fired
    Column("updated_at", Float, nullable=False),
)

# Executions that ended and whose execution.<status> event is not yet ingested.
lifecycle_outbox = Table(
    "lifecycle_outbox",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("execution_id", Id, nullable=False),
    Column("status", String(16), nullable=False),
    Column("execution", Json, nullable=False),  # the execution as it ended (its fields)
    Column("created_at", Float, nullable=False),
)

# Inbound webhooks: POST /v1/hooks/{id} with an HMAC signature becomes an event.
hooks = Table(
    "hooks",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(256)),
    Column("event_type", String(128), nullable=False),
    Column("secret", Text, nullable=False),  # encrypted (bud.crypto)
    Column("created_at", Float, nullable=False),
)

trigger_fires = Table(
    "trigger_fires",
    metadata,
    Column("trigger_id", Id, primary_key=True),
    Column("bucket", BigInteger, primary_key=True),  # whole seconds since the epoch
    Column("fires", Integer, nullable=False),
)

catalogue_log = Table(
    "catalogue_log",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # trigger | event_type | pipeline | config
    Column("key", String(256), nullable=False),
    Column("created_at", Float, nullable=False),
)

processes = Table(
    "processes",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("kind", String(16), nullable=False),  # serve | worker
    Column("host", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("info", Json, nullable=False),  # running steps, slots, ...
)

trigger_state = Table(
    "trigger_state",
    metadata,
    Column("trigger_id", Id, primary_key=True),
    Column("kind", String(16), primary_key=True),  # dedup | debounce
    Column("key", String(512), primary_key=True),
    Column("value", Json),
    Column("expires_at", Float, nullable=False, index=True),
)

events = Table(
    "events",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False, unique=True),
    Column("event_type", String(128), nullable=False),
    Column("source", String(128), nullable=False),
    Column("timestamp", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("data", Json, nullable=False),
    Column("correlation_id", String(128)),
    Column("causation_id", String(128)),
    Column("depth", Integer, nullable=False, default=0),
    Column("test", Boolean, nullable=False, default=False),
    Column("fired_count", Integer, nullable=False, default=0),
    Column("candidate_count", Integer, nullable=False, default=0),
    Column("filtered", Json),  # ids of triggers whose filter did not match (explained on read)
    Index("ix_events_type_seq", "event_type", "seq"),
    Index("ix_events_source_seq", "source", "seq"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False, index=True),
    Column("trigger_id", Id, nullable=False, index=True),
    Column("pipeline_id", Id, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("reason_code", String(32)),
    Column("reason", Text),
    Column("detail", Json),
    Column("execution_id", Id),
    Column("created_at", Float, nullable=False),
)

executions = Table(
    "executions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("pipeline_id", Id, nullable=False, index=True),
    Column("pipeline_version", Integer, nullable=False),
    Column("trigger_id", Id, index=True),
    Column("event_id", String(128), index=True),
    Column("origin", String(16), nullable=False),  # trigger | manual
    Column("status", String(16), nullable=False, index=True),
    Column("params", Json, nullable=False),
    Column("event", Json),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("deadline_at", Float),
    Column("max_parallel", Integer),
    Column("parent_key", String(256), unique=True),  # run_pipeline child: idempotency key
    Column("delivery", Integer, nullable=False, default=0),  # replays that bypass dedup count up
    Column("concurrency_key", String(512)),
    Column("held", Boolean, nullable=False, default=False),  # queued behind a running execution
    Column("retry_count", Integer, nullable=False, default=0),
    UniqueConstraint("trigger_id", "event_id", "delivery", name="uq_execution_trigger_event"),
    Index("ix_executions_trigger_created", "trigger_id", "created_at"),
)

steps = Table(
    "steps",
    metadata,
    Column("execution_id", Id, primary_key=True),
    Column("step_id", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("action", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer),  # a claim past it fails the step (interrupted attempts count)
    Column("attempt_base", Integer, nullable=False, default=0),  # attempts before the last retry
    Column("params", Json),
    Column("outputs", Json),
    Column("logs", Json),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("ready_at", Float),  # set when every dependency is done; claimable from then
    Column("lease_owner", String(64)),
    Column("lease_expires_at", Float),
    Index("ix_steps_ready", "status", "ready_at"),
)

attempts = Table(
    "step_attempts",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("execution_id", Id, nullable=False, index=True),
    Column("step_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("params", Json),
    Column("outputs", Json),
    Column("logs", Json),
    Column("error", Text),
    Column("worker", String(64)),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Index("ix_step_attempts_step", "execution_id", "step_id", "attempt"),
)

# Durable waits for events: a step's wait_for_event (kind "step") or a pipeline's cancel_on
# (kind "cancel"). Ingest reads the waits of each event type it stores (ix_waits_type).
waits = Table(
    "waits",
    metadata,
    Column("id", Id, primary_key=True),
    Column("event_type", String(128), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("execution_id", Id, nullable=False),
    Column("step_id", String(64)),
    Column("filter", Json),
    Column("created_at", Float, nullable=False),
    Index("ix_waits_type", "event_type"),
    Index("ix_waits_execution", "execution_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("execution_id", Id, index=True),
    Column("step_id", String(64)),
    Column("attempt", Integer),
    Column("channel", String(32), nullable=False),
    Column("target", Text),
    Column("status", String(16), nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("message", Text),
    Column("created_at", Float, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(256), nullable=False),
    Column("source", String(64), nullable=False),
    Column("uri", Text),
    Column("metadata", Json, nullable=False),
    Column("created_by", String(256)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

clusters = Table(
    "clusters",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(256), nullable=False),
    Column("environment", String(64)),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("health_url", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(256), nullable=False),
    Column("model_id", Id, nullable=False, index=True),
    Column("cluster_id", Id, nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("error_message", Text),
    Column("idempotency_key", String(256), unique=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# A deployment's revisions: what it ran (model version, config) and whether that was good,
# so a rollback knows where to go back to. The highest revision is the current one.
deployment_revisions = Table(
    "deployment_revisions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("deployment_id", Id, nullable=False, index=True),
    Column("revision", Integer, nullable=False),
    Column("model_version", String(128)),
    Column("config", Json, nullable=False),
    Column("status", String(16), nullable=False),
    Column("good", Boolean, nullable=False),
    Column("reason", String(32), nullable=False),  # created | updated | rollback
    Column("source_revision", Integer),  # a rollback: the revision it went back to
    Column("error_message", Text),
    Column("idempotency_key", String(256), unique=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("deployment_id", "revision", name="uq_deployment_revision"),
)

# Monitoring configured for a deployment (one per deployment; configuring again replaces it).
monitors = Table(
    "monitors",
    metadata,
    Column("id", Id, primary_key=True),
    Column("deployment_id", Id, nullable=False, unique=True),
    Column("cluster_id", Id, nullable=False, index=True),
    Column("environment", String(64)),
    Column("config", Json, nullable=False),
    Column("configured_by", String(256)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# A cluster's health results: each change of status, with its reason and where it came from.
cluster_checks = Table(
    "cluster_checks",
    metadata,
    Column("id", Id, primary_key=True),
    Column("cluster_id", Id, nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("previous_status", String(16)),
    Column("reason", Text),
    Column("source", String(16), nullable=False),  # created | request | probe
    Column("created_at", Float, nullable=False),
)

channels = Table(
    "channels",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("config", Json, nullable=False),
    Column("updated_at", Float, nullable=False),
)

secrets = Table(
    "secrets",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Publishes the server refused (bounded: the newest INGEST_ERRORS_KEPT rows stay).
ingest_errors = Table(
    "ingest_errors",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("source", String(128)),  # the envelope's source, else the client's address
    Column("event_type", String(128)),
    Column("status_code", Integer, nullable=False),
    Column("code", String(64), nullable=False),
    Column("error", Text, nullable=False),
    Column("path", Text),  # details.path of the error, when it names one
    Column("body", Text),  # the request body, truncated
)

# API keys, stored hashed
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(256)),
    Column("scope", String(16), nullable=False),  # read | write | admin
    Column("hash", String(64), nullable=False, unique=True),  # sha256 hex of the key
    Column("prefix", String(16), nullable=False),  # the key's first characters, to recognise it
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)
