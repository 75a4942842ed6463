"""SecretStore on AWS Secrets Manager: one secret per integration, named `<SECRET_PREFIX>-<integration id>`.

How the port's version numbers map onto Secrets Manager, which has version ids and staging labels instead:
- Version N is written with the version id (ClientRequestToken) `broker-version-<N, 20 digits>` and carries the
  staging label `v<N>`. Choosing the id makes the write a check-and-set: a second writer of version N with another
  payload is refused (ResourceExistsException) and takes N+1.
- A version is live while it carries its `v<N>` label: `read` checks it, `enabled_versions` lists the labelled
  ones. `destroy_version` removes the label. Secrets Manager cannot destroy one version: an unlabelled version is
  "deprecated", unreadable through the broker, and removed by AWS itself (it keeps at most 100 versions of a
  secret; `delete` removes the whole secret at once, without a recovery window).
- No version gets AWSCURRENT: the broker never reads "the latest", only numbers.
- Deleting is immediate (no recovery window), but AWS finishes it asynchronously: re-creating the same name in the
  next seconds can be refused, which surfaces as SecretStoreUnavailable (retried by the caller, like any outage).
- Labels are the secret's tags (`provider`, `entity`), set when it is created.
- Errors: ResourceNotFoundException is "absent"; every other botocore failure is SecretStoreUnavailable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.domain.secret_ports import within
from shared.errors import SecretNotFound, SecretStoreUnavailable

if TYPE_CHECKING:
    from types_boto3_secretsmanager import SecretsManagerClient
    from types_boto3_secretsmanager.type_defs import TagTypeDef

DEFAULT_TIMEOUT = 10.0
ADD_ATTEMPTS = 20
_VERSION_ID = re.compile(r"broker-version-(\d{20})")


def version_id(number: int) -> str:
    return f"broker-version-{number:020d}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        raise SecretStoreUnavailable(f"aws secrets manager unavailable: {_code(exc) or 'ClientError'}") from None
    except BotoCoreError as exc:
        raise SecretStoreUnavailable(f"aws secrets manager unavailable: {type(exc).__name__}") from None


def _absent(exc: ClientError) -> bool:
    return _code(exc) == "ResourceNotFoundException"


class AwsSecretsManagerStore:
    def __init__(self, client: SecretsManagerClient, *, probe_secret_id: str = "broker-int-readiness-probe") -> None:
        self._client = client
        self._probe = probe_secret_id

    @staticmethod
    def build_client(
        region: str | None, endpoint_url: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> SecretsManagerClient:
        """boto3's client with its default credential chain; `endpoint_url` (AWS_ENDPOINT_URL, boto3's own
        variable) points it elsewhere: a VPC endpoint, or moto in the tests."""
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 3, "mode": "standard"})
        with _unavailable_on_failure():
            return boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url, config=config)

    def _versions(self, secret_id: str) -> list[dict[str, Any]]:
        """Every version id the secret has, deprecated ones included; [] when the secret does not exist (asked
        first with DescribeSecret: moto answers ListSecretVersionIds on a missing secret with a 500)."""
        if self._describe(secret_id) is None:
            return []
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"SecretId": secret_id, "IncludeDeprecated": True, "MaxResults": 100}
        while True:
            page = self._client.list_secret_version_ids(**kwargs)
            found += [dict(v) for v in page.get("Versions", [])]
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    @staticmethod
    def _number(version: Mapping[str, Any]) -> int | None:
        match = _VERSION_ID.fullmatch(str(version.get("VersionId", "")))
        return int(match.group(1)) if match else None

    def add_version(self, secret_id: str, payload: bytes, labels: Mapping[str, str]) -> int:
        with _unavailable_on_failure():
            for _ in range(ADD_ATTEMPTS):
                numbers = [n for n in map(self._number, self._versions(secret_id)) if n is not None]
                number = max(numbers, default=0) + 1
                if not numbers:
                    self._create(secret_id, labels)
                try:
                    self._client.put_secret_value(
                        SecretId=secret_id, ClientRequestToken=version_id(number), SecretBinary=payload,
                        VersionStages=[f"v{number}"],
                    )  # fmt: skip
                except ClientError as exc:
                    if _code(exc) in ("ResourceExistsException", "ResourceNotFoundException"):
                        continue  # another writer took this number (or deleted the secret): look again
                    raise
                return number
        raise SecretStoreUnavailable(f"could not add a version to {secret_id}: too many concurrent writers")

    def _create(self, secret_id: str, labels: Mapping[str, str]) -> None:
        tags: list[TagTypeDef] = [{"Key": key, "Value": value} for key, value in labels.items()]
        try:
            self._client.create_secret(Name=secret_id, Tags=tags)  # no value: the first version is written after
        except ClientError as exc:
            if _code(exc) != "ResourceExistsException":  # a concurrent writer created it first: fine
                raise

    def read(self, secret_id: str, version: int) -> bytes:
        with _unavailable_on_failure():
            try:
                answer = self._client.get_secret_value(SecretId=secret_id, VersionId=version_id(version))
            except ClientError as exc:
                if _absent(exc):
                    raise SecretNotFound(f"secret {secret_id!r} version {version} is missing or destroyed") from None
                raise
        if f"v{version}" not in answer.get("VersionStages", []) or "SecretBinary" not in answer:
            raise SecretNotFound(f"secret {secret_id!r} version {version} is missing or destroyed")
        return bytes(answer["SecretBinary"])

    def enabled_versions(self, secret_id: str) -> list[int]:
        stages = (self._describe(secret_id) or {}).get("VersionIdsToStages", {})
        live = [(self._number({"VersionId": vid}), labels) for vid, labels in stages.items()]
        return sorted(n for n, labels in live if n is not None and f"v{n}" in labels)

    def destroy_version(self, secret_id: str, version: int) -> None:
        with _unavailable_on_failure():
            try:
                self._client.update_secret_version_stage(
                    SecretId=secret_id, VersionStage=f"v{version}", RemoveFromVersionId=version_id(version)
                )
            except ClientError as exc:
                if not _absent(exc) and _code(exc) != "InvalidParameterException":  # not labelled (any more): fine
                    raise

    def delete(self, secret_id: str) -> None:
        with _unavailable_on_failure():
            try:
                self._client.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
            except ClientError as exc:
                if not _absent(exc):
                    raise

    def stale_secret_ids(
        self, prefix: str, created_before: datetime, created_after: datetime | None = None
    ) -> list[str]:
        found: list[tuple[str, datetime]] = []
        with _unavailable_on_failure():
            pages = self._client.get_paginator("list_secrets").paginate(
                Filters=[{"Key": "name", "Values": [prefix + "-"]}], PaginationConfig={"PageSize": 100}
            )
            for page in pages:
                found += [(str(s["Name"]), s["CreatedDate"]) for s in page.get("SecretList", []) if "CreatedDate" in s]
        return sorted(
            name for name, created in found
            if name.startswith(prefix + "-") and within(created, created_before, created_after)
        )  # fmt: skip

    def labels(self, secret_id: str) -> dict[str, str]:
        described = self._describe(secret_id)
        return {str(t["Key"]): str(t["Value"]) for t in (described or {}).get("Tags", [])}

    def _describe(self, secret_id: str) -> dict[str, Any] | None:
        with _unavailable_on_failure():
            try:
                return dict(self._client.describe_secret(SecretId=secret_id))
            except ClientError as exc:
                if _absent(exc):
                    return None
                raise

    def check(self) -> None:
        # A name under the prefix that is never created: ResourceNotFound proves reachability and credentials.
        self._describe(self._probe)
