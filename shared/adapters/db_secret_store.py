"""DatabaseSecretStore: the embedded vault (SECRET_BACKEND=database).

Each version's payload is sealed with AES-256-GCM under the data key; the associated data binds it to the
secret id and version number. Destroying a version wipes its ciphertext and keeps a tombstone row, so version
numbers never repeat (as in Secret Manager). A database error is SecretStoreUnavailable (503), as an outage of
Secret Manager is for GcpSecretManagerStore; SQLAlchemy's message (which may hold the statement) is not kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import wraps
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from tenacity import RetryError, retry, retry_if_exception_type, stop_after_attempt, wait_random

from shared.adapters.orm import VaultSecretVersionRow as V
from shared.domain.envelope import Keyring
from shared.domain.ports import Clock
from shared.errors import SecretNotFound, SecretStoreUnavailable

PURPOSE = "vault-secret"
ADD_ATTEMPTS = 20
P = ParamSpec("P")
R = TypeVar("R")


def _store_call(method: Callable[P, R]) -> Callable[P, R]:
    """A database error in `method` becomes SecretStoreUnavailable."""

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except SQLAlchemyError as exc:
            raise SecretStoreUnavailable(f"embedded vault unavailable: {type(exc).__name__}") from None

    return wrapper


class DatabaseSecretStore:
    def __init__(self, engine: Engine, keyring: Keyring, clock: Clock) -> None:
        self._engine = engine
        self._keyring = keyring
        self._clock = clock

    @_store_call
    def add_version(self, secret_id: str, payload: bytes, labels: Mapping[str, str]) -> int:
        try:
            return self._add_once(secret_id, payload, labels)
        except RetryError:
            raise SecretStoreUnavailable(
                f"could not add a version to {secret_id}: too many concurrent writers"
            ) from None

    # A concurrent writer may take the same number first (primary key conflict): take the next one.
    @retry(
        retry=retry_if_exception_type(IntegrityError),
        stop=stop_after_attempt(ADD_ATTEMPTS),
        wait=wait_random(0, 0.02),
    )
    def _add_once(self, secret_id: str, payload: bytes, labels: Mapping[str, str]) -> int:
        with self._engine.begin() as conn:
            latest = conn.execute(select(func.max(V.version)).where(V.secret_id == secret_id)).scalar()
            version = (latest or 0) + 1
            sealed, key_version = self._keyring.seal(payload, purpose=PURPOSE, record=f"{secret_id}/{version}")
            row = {"ciphertext": sealed, "key_version": key_version, "labels": dict(labels)}
            conn.execute(insert(V).values(secret_id=secret_id, version=version, created_at=self._clock.now(), **row))
        return version

    @_store_call
    def read(self, secret_id: str, version: int) -> bytes:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(V.ciphertext, V.key_version).where(V.secret_id == secret_id, V.version == version)
            ).one_or_none()
        if row is None or row.ciphertext is None or row.key_version is None:
            raise SecretNotFound(f"secret {secret_id} has no readable version {version}")
        return self._keyring.open(
            row.ciphertext, key_version=row.key_version, purpose=PURPOSE, record=f"{secret_id}/{version}"
        )

    @_store_call
    def enabled_versions(self, secret_id: str) -> list[int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(V.version).where(V.secret_id == secret_id, V.ciphertext.is_not(None)).order_by(V.version)
            )
            return [int(v) for v in rows.scalars()]

    @_store_call
    def destroy_version(self, secret_id: str, version: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(V)
                .where(V.secret_id == secret_id, V.version == version, V.ciphertext.is_not(None))
                .values(ciphertext=None, key_version=None, destroyed_at=self._clock.now())
            )

    @_store_call
    def delete(self, secret_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(V).where(V.secret_id == secret_id))

    @_store_call
    def stale_secret_ids(
        self, prefix: str, created_before: datetime, created_after: datetime | None = None
    ) -> list[str]:
        created = func.min(V.created_at)
        window = [created < created_before] + ([] if created_after is None else [created > created_after])
        query = (
            select(V.secret_id)
            .where(V.secret_id.startswith(prefix + "-", autoescape=True))
            .group_by(V.secret_id)
            .having(*window)
            .order_by(V.secret_id)
        )
        with self._engine.connect() as conn:
            return [str(sid) for sid in conn.execute(query).scalars()]

    @_store_call
    def labels(self, secret_id: str) -> dict[str, str]:
        query = select(V.labels).where(V.secret_id == secret_id).order_by(V.version).limit(1)
        with self._engine.connect() as conn:
            labels = conn.execute(query).scalar()
        return {str(k): str(v) for k, v in (labels or {}).items()}

    @_store_call
    def check(self) -> None:
        with self._engine.connect() as conn:
            conn.execute(text("SELECT 1 FROM vault_secret_versions WHERE 1 = 0"))
