"""Typed settings, read once from the environment at the composition root.

Every variable is documented in the README's configuration table; `tests/unit/test_readme.py` keeps the two
in step. Errors name the variable and say what was expected, never the value of a secret.
"""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.config_rules import coherence_problems, token_caller_problems
from shared.config_values import (
    describe_errors,
    environment_values,
    is_placeholder,
    provider_env_prefix,
    read_clients,
    split_api_keys,
    split_list,
)
from shared.domain.egress import EgressPolicy, parse_networks
from shared.domain.models import ClientCredentials
from shared.domain.urls import MAX_URL_LENGTH, check_url, normalise_web_url
from shared.domain.webhooks import parse_secret
from shared.errors import ConfigurationError

SECRET_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")  # all patterns here: fullmatch
DATA_KEY_SECRET_RE = re.compile(r"projects/[^/\s]+/secrets/[A-Za-z0-9_-]+/versions/[1-9][0-9]*")
# Pub/Sub's own rules: project ids 6-30 characters; topic names 3-255, starting with a letter, not `goog`.
PUBSUB_TOPIC_RE = re.compile(r"projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/(?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254}")
MAX_WEBHOOKS = 10

# DATABASE_URL's accepted prefixes and the dialect each names.
URL_DIALECTS = {"postgresql+pg8000://": "postgresql", "mysql+pymysql://": "mysql", "sqlite://": "sqlite"}
CommaList = list[str]  # from the environment as "a,b,c" (split_list)
Environment = Literal["development", "production"]
CLOUD_RUN_MARKERS = ("K_SERVICE", "CLOUD_RUN_JOB")  # set by Cloud Run on every service / job


def default_environment() -> Environment:
    """Unset ENVIRONMENT is production on Cloud Run (fail closed: no open token endpoint), development elsewhere."""
    return "production" if any(os.environ.get(name) for name in CLOUD_RUN_MARKERS) else "development"


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    port: int = Field(8080, ge=1, le=65535)
    environment: Environment = Field(default_factory=default_environment)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"

    database_url: str | None = None
    instance_connection_name: str | None = None
    db_user: str | None = None
    db_name: str = "broker"
    db_private_ip: bool = False
    db_dialect: Literal["postgresql", "mysql"] | None = None  # the Cloud SQL instance's engine (connector only)
    db_pool_size: int = Field(5, ge=1, le=100)
    db_max_overflow: int = Field(2, ge=0, le=100)
    local_data_dir: str = ".broker"
    local_data_key_file: str | None = None

    secret_backend: Literal["database", "gcp", "openbao", "aws"] = "database"
    gcp_project: str | None = None
    secret_prefix: str = "broker-int"
    secret_manager_endpoint: str | None = None
    data_keys: SecretStr | None = None
    data_key_current: int | None = Field(None, ge=1)
    data_key_secret: str | None = None
    data_key_transit: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/[A-Za-z0-9_.-]+$")
    openbao_addr: str | None = None
    openbao_auth: Literal["token", "approle", "gcp"] | None = None
    openbao_token: SecretStr | None = None
    openbao_role_id: str | None = None
    openbao_secret_id: SecretStr | None = None
    openbao_role: str | None = None
    openbao_mount: str = Field("secret", pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
    aws_region: str | None = Field(None, pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
    aws_endpoint_url: str | None = None

    providers_file: str | None = None
    public_base_url: str | None = None
    allowed_return_urls: CommaList = []
    allowed_origins: CommaList = []
    oauth_state_ttl: int = Field(600, ge=60, le=3600)
    oauth_browser_binding: bool = True
    connect_session_ttl: int = Field(1800, ge=60, le=1800)
    provider_timeout: float = Field(10.0, gt=0, le=60)
    auth_mode: Literal["dev", "oidc"] = "dev"
    auth_issuer: str | None = None
    auth_audience: CommaList = []
    auth_jwks_url: str | None = None
    auth_entity_claim: str = Field("sub", pattern=r"^[A-Za-z_][A-Za-z0-9_.:/-]{0,99}$")
    internal_api_keys: list[SecretStr] = []
    token_invokers: CommaList = []
    token_audience: str | None = None
    allowed_cidrs: CommaList = []
    egress_allowed_networks: CommaList = []
    scheduler_service_account: str | None = None
    refresh_audience: str | None = None
    refresh_horizon: int = Field(900, ge=60, le=86400)
    refresh_batch_size: int = Field(50, ge=1, le=1000)
    refresh_concurrency: int = Field(8, ge=1, le=64)
    refresh_deadline: int = Field(240, ge=10, le=3600)
    refresh_lease: int = Field(60, ge=5, le=600)
    local_refresh_interval: int = Field(60, ge=0, le=3600)
    tasks_location: str | None = Field(None, pattern=r"^[a-z]+-[a-z]+[0-9]+$")
    tasks_queue_prefix: str = Field("broker-refresh", pattern=r"^[a-z][a-z0-9-]{0,59}$")
    tasks_endpoint: str | None = None
    refresh_shard_url: str | None = Field(None, pattern=r"^https?://")
    refresh_shard_size: int = Field(100, ge=1, le=1000)
    refresh_max_shards: int = Field(600, ge=1, le=10000)
    audit_retention_days: int = Field(400, ge=0, le=36500)
    oauth_state_retention: int = Field(86400, ge=0, le=30 * 86400)
    retention_batch_size: int = Field(1000, ge=1, le=10000)
    retention_max_batches: int = Field(10, ge=1, le=1000)
    sweep_max_secrets: int = Field(20, ge=0, le=1000)
    sweep_window_hours: int = Field(48, ge=0, le=24 * 366)  # 0: the refresh job lists every secret each run
    webhook_urls: CommaList = []
    webhook_secrets: list[SecretStr] = []
    pubsub_topic: str | None = None
    events_retry_hours: int = Field(24, ge=1, le=168)

    _clients: dict[str, ClientCredentials] = PrivateAttr(default_factory=dict)

    _split_lists = field_validator(
        "allowed_return_urls",
        "allowed_origins",
        "auth_audience",
        "token_invokers",
        "allowed_cidrs",
        "egress_allowed_networks",
        "webhook_urls",
        mode="before",
    )(split_list)
    _split_keys = field_validator("internal_api_keys", "webhook_secrets", mode="before")(split_api_keys)

    @field_validator("secret_prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if not SECRET_PREFIX_RE.fullmatch(value):
            raise ValueError("must start with a letter and hold only letters, digits, '-' and '_' (≤ 100)")
        return value

    @field_validator("database_url")
    @classmethod
    def _url_driver(cls, value: str | None) -> str | None:
        if value and not value.startswith(tuple(URL_DIALECTS)):
            raise ValueError("must start with postgresql+pg8000://, mysql+pymysql:// or sqlite://")
        return value

    @field_validator("data_key_secret")
    @classmethod
    def _pinned_key(cls, value: str | None) -> str | None:
        if value and not DATA_KEY_SECRET_RE.fullmatch(value):
            raise ValueError("must be projects/<p>/secrets/<name>/versions/<number> (a number, never 'latest')")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = check_url(value)
        if problem:
            raise ValueError(problem)
        return value.rstrip("/")

    @field_validator("auth_issuer", "auth_jwks_url", "openbao_addr", "aws_endpoint_url")
    @classmethod
    def _auth_urls(cls, value: str | None) -> str | None:
        if not value:  # unset, or set empty (terraform passes "" for "use the default")
            return None
        problem = check_url(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("allowed_return_urls")
    @classmethod
    def _return_urls(cls, values: list[str]) -> list[str]:
        normalised = []
        for value in values:
            try:
                normalised.append(normalise_web_url(value))  # matched and redirected to in this form
            except ValueError as problem:
                raise ValueError(f"entry {value!r} {problem}") from None
        return normalised

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        for value in values:
            problem = check_url(value)
            if problem or urlsplit(value).path not in ("", "/"):
                raise ValueError(f"entry {value!r} must be an origin (scheme://host[:port]); {problem or 'no path'}")
        return [value.rstrip("/") for value in values]

    @field_validator("allowed_cidrs", "egress_allowed_networks")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"entry {value!r} is not an IP network (e.g. 10.8.0.0/16)") from None
        return values

    @field_validator("webhook_urls")
    @classmethod
    def _webhook_urls(cls, values: list[str]) -> list[str]:
        if len(values) > MAX_WEBHOOKS:
            raise ValueError(f"at most {MAX_WEBHOOKS} endpoints")
        for number, value in enumerate(values, start=1):
            problem = "is too long" if len(value) > MAX_URL_LENGTH else check_url(value)
            if problem:
                raise ValueError(f"endpoint {number} {problem}")
        if len(set(values)) != len(values):
            raise ValueError("an endpoint is listed twice")
        return values

    @field_validator("webhook_secrets")
    @classmethod
    def _webhook_secrets(cls, values: list[SecretStr]) -> list[SecretStr]:
        for number, secret in enumerate(values, start=1):
            try:
                parse_secret(secret.get_secret_value())
            except ValueError as problem:
                raise ValueError(f"secret {number} of {len(values)} {problem}") from None
        return values

    @field_validator("pubsub_topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not PUBSUB_TOPIC_RE.fullmatch(value):
            raise ValueError("must be projects/<project id>/topics/<topic name>")
        return value

    @field_validator("internal_api_keys")
    @classmethod
    def _api_keys(cls, values: list[SecretStr]) -> list[SecretStr]:
        for key in values:
            raw = key.get_secret_value()
            if is_placeholder(raw) or len(raw) < 24:
                raise ValueError("every key must be at least 24 characters and not a placeholder")
        return values

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        problems = coherence_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def token_caller_problems(self) -> list[str]:
        """token_fetch's own start-up rule (checked by that function only: the others are not given the keys)."""
        return token_caller_problems(self)

    @property
    def dialect(self) -> str:
        """The metadata store's SQL dialect: `postgresql`, `mysql` or `sqlite` (the embedded default)."""
        if self.instance_connection_name:
            return self.db_dialect or "postgresql"
        url = self.database_url or "sqlite://"
        return next(name for prefix, name in URL_DIALECTS.items() if url.startswith(prefix))

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def egress_policy(self) -> EgressPolicy | None:
        """Production checks where it connects (public addresses, plus EGRESS_ALLOWED_NETWORKS); development not."""
        return EgressPolicy(parse_networks(self.egress_allowed_networks)) if self.is_production else None

    @property
    def base_url(self) -> str:
        return self.public_base_url or f"http://127.0.0.1:{self.port}"

    @property
    def return_urls(self) -> list[str]:
        return self.allowed_return_urls or ([] if self.is_production else [self.base_url + "/"])

    @property
    def connect_origins(self) -> list[str]:
        """Where connect sessions may post their result: ALLOWED_ORIGINS and the broker's own origin (its own pages:
        `make run`'s sample page, `broker oauth init`)."""
        return list(dict.fromkeys([*self.allowed_origins, self.base_url.rstrip("/")]))

    def model_post_init(self, context: object, /) -> None:
        self._clients.update(read_clients(os.environ))

    @property
    def webhook_keys(self) -> list[bytes]:
        return [parse_secret(secret.get_secret_value()) for secret in self.webhook_secrets]

    def provider_credentials(self, provider_id: str) -> ClientCredentials | None:
        """The `<PROVIDER>_CLIENT_ID` / `_CLIENT_SECRET` pair captured when the settings were read."""
        return self._clients.get(provider_env_prefix(provider_id))


def load_settings(**overrides: object) -> Settings:
    """Read and validate the environment; raise ConfigurationError naming each bad variable."""
    try:
        settings = Settings.model_validate({**environment_values(os.environ, Settings.model_fields), **overrides})
    except ValidationError as exc:
        raise ConfigurationError(describe_errors(exc.errors(include_input=False))) from None
    except ValueError as exc:
        raise ConfigurationError(f"invalid settings: {exc}") from None
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
