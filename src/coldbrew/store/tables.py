"""The tables: items, users, interactions, vectors (with the model that made them), model versions,
and what replicas share (the change log, model files, fleet state).

Ids are the caller's strings; an integer surrogate key (``pk``) keeps insertion order, so a
restart rebuilds the index rows in the same order as before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID_LENGTH = 200


class Base(DeclarativeBase):
    pass


def _updated_at() -> Any:
    """Stamped when the row is inserted, and again by every ORM update of it."""
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class ItemRow(Base):
    __tablename__ = "items"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True, nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    updated_at: Mapped[datetime] = _updated_at()


class UserRow(Base):
    __tablename__ = "users"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    updated_at: Mapped[datetime] = _updated_at()


class InteractionRow(Base):
    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_user", "user_id"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    interaction_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True, nullable=False)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    item_id: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    event: Mapped[str] = mapped_column(String(32), nullable=False)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    timestamp: Mapped[float] = mapped_column(Float, nullable=False)
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class VectorRow(Base):
    """One vector per (owner kind, owner id, model); ``data`` holds its bytes in the format named
    by ``dtype`` (:mod:`coldbrew.store.codec`: ``float32``, ``float16`` or ``int8`` with a scale;
    rows written before the column existed are ``float32``)."""

    __tablename__ = "vectors"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    model: Mapped[str] = mapped_column(String(300), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    dtype: Mapped[str] = mapped_column(
        String(16), nullable=False, default="float32", server_default="float32"
    )


class ModelVersionRow(Base):
    """Each encoder the service has run with: its name, rebuild config and dimension."""

    __tablename__ = "model_versions"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(300), unique=True, nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class ChangeRow(Base):
    """One committed write, for the other replicas to apply (see :mod:`coldbrew.live.fleet`):
    ``kind`` (``items``, ``users``, ``model``, ``refit``), the ids it touched and the replica
    that made it. Ids increase in commit order."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    ids: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    origin: Mapped[str] = mapped_column(String(200), nullable=False)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class ModelFileRow(Base):
    """The files of a served model version (JSON and ``.npz`` only), shared by every replica."""

    __tablename__ = "model_files"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    path: Mapped[str] = mapped_column(String(300), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class FleetStateRow(Base):
    """Small named values the replicas share: the served model version, the pruned log's end."""

    __tablename__ = "fleet_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
