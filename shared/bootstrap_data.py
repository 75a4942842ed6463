"""The composition root's metadata part (a base of shared.bootstrap.Container): the SQLAlchemy engine, the raw
PostgreSQL connections of the token hot path, and the repositories over them, each built lazily, once per
instance. Each adapter module is imported by its component: a function whose first request needs none of them
(and no engine) imports no SQLAlchemy."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shared.adapters.pg_pool import Connect
    from shared.config import Settings
    from shared.domain.ports import (
        AuditLog,
        AuditTrail,
        CiphertextStore,
        Clock,
        IntegrationAdmin,
        IntegrationFinder,
        IntegrationRepository,
        OAuthStateRepository,
        RefreshStore,
        TokenReads,
    )


class DataComponents:
    settings: Settings

    if TYPE_CHECKING:  # what the Container provides

        @property
        def clock(self) -> Clock: ...

    @cached_property
    def engine(self) -> Engine:
        from shared.adapters.db import build_engine

        return build_engine(self.settings, connect=self.pg_connect if self.settings.instance_connection_name else None)

    @cached_property
    def pg_connect(self) -> Connect | None:
        """How this instance opens a raw PostgreSQL connection (one Cloud SQL connector per process); None on
        SQLite and MySQL (their token reads go through SQLAlchemy)."""
        from shared.adapters import pg_pool

        if self.settings.dialect != "postgresql":
            return None
        if self.settings.instance_connection_name:
            return pg_pool.cloud_sql_connect(self.settings)
        url = self.settings.database_url or ""
        return pg_pool.url_connect(url) if url.startswith("postgresql") else None

    @cached_property
    def token_reads(self) -> TokenReads:
        connect = self.pg_connect
        if connect is None:
            from shared.adapters.sql_token_reads import SqlTokenReads

            return SqlTokenReads(self.engine)
        from shared.adapters.pg_pool import PgConnections
        from shared.adapters.pg_token_reads import PgTokenReads

        return PgTokenReads(PgConnections(connect, self.settings.db_pool_size))

    @cached_property
    def integrations(self) -> IntegrationRepository:
        from shared.adapters.sql_repositories import SqlIntegrationRepository

        return SqlIntegrationRepository(self.engine, self.clock)

    @cached_property
    def states(self) -> OAuthStateRepository:
        from shared.adapters.sql_repositories import SqlOAuthStateRepository

        return SqlOAuthStateRepository(self.engine)

    @cached_property
    def audit(self) -> AuditLog:
        from shared.adapters.sql_repositories import SqlAuditLog

        return SqlAuditLog(self.engine, self.clock)

    @cached_property
    def audit_trail(self) -> AuditTrail:
        from shared.adapters.sql_operator import SqlAuditTrail

        return SqlAuditTrail(self.engine)

    @cached_property
    def ciphertexts(self) -> CiphertextStore:
        from shared.adapters.sql_ciphertexts import SqlCiphertexts

        return SqlCiphertexts(self.engine)

    @cached_property
    def integration_finder(self) -> IntegrationFinder:
        from shared.adapters.sql_operator import SqlIntegrationFinder

        return SqlIntegrationFinder(self.engine)

    @cached_property
    def integration_admin(self) -> IntegrationAdmin:
        from shared.adapters.sql_integrations import SqlIntegrationAdmin

        return SqlIntegrationAdmin(self.engine, self.clock)

    @cached_property
    def refresh_store(self) -> RefreshStore:
        from shared.adapters.sql_refresh import SqlRefreshStore

        return SqlRefreshStore(self.engine)
