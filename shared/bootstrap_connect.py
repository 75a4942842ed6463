"""The composition root's connect part (a base of shared.bootstrap.Container): connect sessions and connect flows'
status, built lazily, once per instance."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shared.config import Settings
    from shared.domain.connect_ports import FlowRecords
    from shared.domain.ports import AuditLog, Clock, IntegrationRepository
    from shared.providers.catalog import Catalog
    from shared.services.connect_sessions import ConnectSessions


class ConnectComponents:
    settings: Settings

    if TYPE_CHECKING:  # what the Container provides

        @property
        def engine(self) -> Engine: ...
        @property
        def catalog(self) -> Catalog: ...
        @property
        def integrations(self) -> IntegrationRepository: ...
        @property
        def clock(self) -> Clock: ...
        @property
        def audit(self) -> AuditLog: ...

    @cached_property
    def flow_records(self) -> FlowRecords:
        from shared.adapters.sql_connect import SqlFlowRecords

        return SqlFlowRecords(self.engine)

    @cached_property
    def connect_sessions(self) -> ConnectSessions:
        from shared.adapters.sql_connect import SqlConnectSessionRepository
        from shared.services.connect_sessions import ConnectSessions

        return ConnectSessions(
            settings=self.settings, catalog=self.catalog, sessions=SqlConnectSessionRepository(self.engine),
            flows=self.flow_records, integrations=self.integrations, clock=self.clock, audit=self.audit,
        )  # fmt: skip
