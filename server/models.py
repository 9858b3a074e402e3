"""SQLAlchemy 2 models: the one schema both SQLite and Postgres use."""
from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on both databases (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.astimezone(dt.timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


Json = JSON().with_variant(JSONB(), "postgresql")


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime}


class TimestampMixin:
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FlowRow(TimestampMixin, Base):
    __tablename__ = "flows"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class StorageBlockRow(TimestampMixin, Base):
    __tablename__ = "storage_blocks"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict] = mapped_column(Json, default=dict)
    # sha256 of type + canonical config: equal blocks are one block.
    config_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class DeploymentRow(TimestampMixin, Base):
    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("flow_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    flow_id: Mapped[str] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    flow_data_encoding: Mapped[str] = mapped_column(String(32), default="")
    flow_data_blob: Mapped[str] = mapped_column(Text, default="")
    # {"interval": {...}} | {"cron": {...}} | {"rrule": {...}} | None
    schedule: Mapped[dict | None] = mapped_column(Json, nullable=True)
    is_schedule_active: Mapped[bool] = mapped_column(Boolean, default=True)
    parameters: Mapped[dict] = mapped_column(Json, default=dict)
    # JSON Schema of the flow's parameters (flowdeck.server.parameter_schemas); NULL: not checked.
    parameter_schema: Mapped[dict | None] = mapped_column(Json, nullable=True)
    tags: Mapped[list] = mapped_column(Json, default=list)
    flow_runner_type: Mapped[str] = mapped_column(String(64), default="universal")
    flow_runner_config: Mapped[dict] = mapped_column(Json, default=dict)
    catchup: Mapped[bool] = mapped_column(Boolean, default=False)
    max_lateness_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    storage_block_id: Mapped[str | None] = mapped_column(
        ForeignKey("storage_blocks.id", ondelete="RESTRICT"), nullable=True, index=True
    )
    # Where the scheduler got to: slots up to here exist (or were skipped).
    scheduled_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    # When the scheduler next needs to look at this deployment (its first
    # upcoming slot); NULL means at the next pass. Keeps steady-state passes cheap.
    scheduler_due_at: Mapped[dt.datetime | None] = mapped_column(nullable=True, index=True)


class FlowRunRow(TimestampMixin, Base):
    __tablename__ = "flow_runs"
    # Lists page in (expected_start_time, id) order, either way, with an
    # equality filter or none in front: each index below hands a page over in
    # that order, so a page reads its own rows and never sorts the table.
    __table_args__ = (
        Index("ix_flow_runs_expected", "expected_start_time", "id"),
        Index("ix_flow_runs_state_expected", "state_type", "expected_start_time", "id"),
        Index("ix_flow_runs_deployment_expected", "deployment_id", "expected_start_time", "id"),
        # A deployment's next run (its earliest SCHEDULED one) in one probe.
        Index("ix_flow_runs_deployment_state_expected", "deployment_id", "state_type", "expected_start_time", "id"),
        Index("ix_flow_runs_flow_expected", "flow_id", "expected_start_time", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), index=True)
    flow_id: Mapped[str] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"))
    deployment_id: Mapped[str | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL"), nullable=True
    )
    parameters: Mapped[dict] = mapped_column(Json, default=dict)
    tags: Mapped[list] = mapped_column(Json, default=list)
    state_type: Mapped[str] = mapped_column(String(16))
    state_name: Mapped[str] = mapped_column(String(64))
    state_message: Mapped[str] = mapped_column(Text, default="")
    state_timestamp: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expected_start_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    start_time: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    end_time: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    total_run_time: Mapped[float] = mapped_column(Float, default=0.0)
    # Unique: a key seen before returns the existing run, never a second one.
    idempotency_key: Mapped[str | None] = mapped_column(String(300), unique=True, nullable=True)
    flow_runner_type: Mapped[str] = mapped_column(String(64), default="")
    flow_runner_config: Mapped[dict] = mapped_column(Json, default=dict)
    auto_scheduled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Lease: who holds the run, with a fencing token that grows at every lease.
    lease_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    agent_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    fencing_token: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_expires: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    work_queue_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # W3C trace context of the call that created the run (NULL unless the
    # server traces): its lease continues that trace (flowdeck.server.tracing).
    trace_context: Mapped[dict | None] = mapped_column(Json, nullable=True)


class FlowRunStateRow(Base):
    __tablename__ = "flow_run_states"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flow_run_id: Mapped[str] = mapped_column(ForeignKey("flow_runs.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    timestamp: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LogRow(Base):
    __tablename__ = "logs"
    __table_args__ = (Index("ix_logs_run_time", "flow_run_id", "timestamp"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flow_run_id: Mapped[str] = mapped_column(ForeignKey("flow_runs.id", ondelete="CASCADE"))
    timestamp: Mapped[dt.datetime] = mapped_column(default=utcnow)
    level: Mapped[int] = mapped_column(Integer, default=20)
    logger_name: Mapped[str] = mapped_column(String(200), default="")
    message: Mapped[str] = mapped_column(Text, default="")


class RequestLogRow(Base):
    """AIP-155: the first response to each request_id, replayed on repeats."""

    __tablename__ = "request_log"
    method: Mapped[str] = mapped_column(String(100), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    response: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class WorkQueueRow(TimestampMixin, Base):
    __tablename__ = "work_queues"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    filter_tags: Mapped[list] = mapped_column(Json, default=list)
    filter_deployment_ids: Mapped[list] = mapped_column(Json, default=list)
    filter_flow_runner_types: Mapped[list] = mapped_column(Json, default=list)
    is_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    concurrency_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)


class FlowDataBlobRow(Base):
    __tablename__ = "flow_data_blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiKeyRow(Base):
    """An API key: only a salted hash of its secret is kept (flowdeck.server.api_keys)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        # A name is unique among keys that are not revoked.
        Index("ix_api_keys_active_name", "name", unique=True,
              sqlite_where=text("revoked IS NULL"), postgresql_where=text("revoked IS NULL")),
    )
    # The public part of the key ("fdk_<id>_<secret>").
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(16))
    # "scrypt$n$r$p$<salt b64>$<hash b64>".
    secret_hash: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked: Mapped[dt.datetime | None] = mapped_column(nullable=True)
