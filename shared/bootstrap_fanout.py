"""The composition root's fan-out part (a base of shared.bootstrap.Container): the Cloud Tasks queue and the
refresh fan-out (dispatch and shards), each built lazily, once per instance."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.domain.fanout import TaskQueue
    from shared.domain.ports import Clock, RefreshStore
    from shared.providers.catalog import Catalog
    from shared.services.refresh import Refresher
    from shared.services.refresh_fanout import RefreshFanout
    from shared.services.refresh_job import JobSettings


class FanoutComponents:
    settings: Settings

    if TYPE_CHECKING:  # what the Container provides

        @property
        def refresh_store(self) -> RefreshStore: ...

        @property
        def refresher(self) -> Refresher: ...

        @property
        def catalog(self) -> Catalog: ...

        @property
        def clock(self) -> Clock: ...

        @property
        def job_settings(self) -> JobSettings: ...

        def later(self, component: str) -> Any: ...

    @cached_property
    def task_queue(self) -> TaskQueue:
        from shared.adapters.gcp_tasks import CloudTasksQueue

        s = self.settings
        assert s.tasks_location
        assert s.gcp_project
        assert s.refresh_shard_url
        return CloudTasksQueue(
            CloudTasksQueue.build_client(s.tasks_endpoint), project=s.gcp_project, location=s.tasks_location,
            url=s.refresh_shard_url, service_account=s.scheduler_service_account, audience=s.refresh_audience,
        )  # fmt: skip

    @cached_property
    def refresh_fanout(self) -> RefreshFanout:
        from shared.services.refresh_fanout import FanoutSettings, RefreshFanout

        s = self.settings
        return RefreshFanout(
            store=self.refresh_store, refresher=self.refresher, catalog=self.catalog, clock=self.clock,
            queue=self.later("task_queue"), job=self.job_settings,
            settings=FanoutSettings(
                s.tasks_queue_prefix, s.refresh_shard_size, s.refresh_max_shards, configured=bool(s.tasks_location)
            ),
        )  # fmt: skip
