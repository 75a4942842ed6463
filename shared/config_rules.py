"""Rules across settings: what one variable needs from another, and what production refuses.

Pure functions over a validated `Settings` (each field is already well-formed); each problem names the variable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.config_values import parse_data_keys

if TYPE_CHECKING:
    from shared.config import Settings


def coherence_problems(settings: Settings) -> list[str]:
    problems = []
    if settings.data_keys is not None:
        try:
            versions = parse_data_keys(settings.data_keys.get_secret_value())
        except ValueError as exc:
            problems.append(f"DATA_KEYS: {exc}")
        else:
            if settings.data_key_current is not None and settings.data_key_current not in versions:
                problems.append(f"DATA_KEY_CURRENT: version {settings.data_key_current} is not in DATA_KEYS")
    elif settings.data_key_current is not None:
        problems.append("DATA_KEY_CURRENT: only with DATA_KEYS (DATA_KEY_SECRET's pinned version encrypts)")
    if settings.secret_backend == "gcp" and not settings.gcp_project:
        problems.append("GCP_PROJECT: required when SECRET_BACKEND=gcp")
    if settings.secret_backend == "openbao" or settings.data_key_transit:
        problems.extend(openbao_problems(settings))
    if settings.secret_backend == "aws" and not settings.aws_region:
        problems.append("AWS_REGION: required when SECRET_BACKEND=aws")
    if settings.data_key_transit and (settings.data_keys or settings.data_key_secret):
        problems.append("DATA_KEY_TRANSIT: set one source for the data key, not DATA_KEYS or DATA_KEY_SECRET too")
    if settings.data_key_secret and not settings.gcp_project and not settings.secret_manager_endpoint:
        problems.append("DATA_KEY_SECRET: needs GCP_PROJECT (or SECRET_MANAGER_ENDPOINT) to reach Secret Manager")
    if settings.data_keys and settings.data_key_secret:
        problems.append("DATA_KEYS and DATA_KEY_SECRET: set one source for the data key, not both")
    if settings.provider_timeout + 10 > settings.refresh_lease:
        problems.append("REFRESH_LEASE: must exceed PROVIDER_TIMEOUT by at least 10 s (the call must fit)")
    if settings.instance_connection_name and settings.database_url:
        problems.append("INSTANCE_CONNECTION_NAME and DATABASE_URL: set one, not both")
    if settings.db_dialect and not settings.instance_connection_name and settings.dialect != settings.db_dialect:
        problems.append(f"DB_DIALECT: {settings.db_dialect} contradicts DATABASE_URL ({settings.dialect})")
    if settings.instance_connection_name and not settings.db_user:
        problems.append("DB_USER: required with INSTANCE_CONNECTION_NAME (the IAM database user)")
    if settings.webhook_urls and not settings.webhook_secrets:
        problems.append("WEBHOOK_SECRETS: required with WEBHOOK_URLS (every delivery is signed)")
    if settings.tasks_location and not (settings.gcp_project and settings.refresh_shard_url):
        problems.append("TASKS_LOCATION: the refresh fan-out needs GCP_PROJECT and REFRESH_SHARD_URL as well")
    if settings.auth_mode == "oidc" and not (settings.auth_issuer and settings.auth_audience):
        problems.append("AUTH_ISSUER and AUTH_AUDIENCE: both are required when AUTH_MODE=oidc")
    if settings.environment == "production":
        problems.extend(production_problems(settings))
    return problems


def openbao_auth_method(settings: Settings) -> str:
    """OPENBAO_AUTH, or what the credentials given imply: AppRole with a role id, else a token."""
    if settings.openbao_auth:
        return settings.openbao_auth
    return "approle" if settings.openbao_role_id else "token"


def openbao_problems(settings: Settings) -> list[str]:
    """What reaching OpenBao needs (SECRET_BACKEND=openbao, DATA_KEY_TRANSIT, or a migrate-secrets target)."""
    what = "SECRET_BACKEND=openbao or DATA_KEY_TRANSIT"
    if not settings.openbao_addr:
        return [f"OPENBAO_ADDR: required with {what}"]
    method = openbao_auth_method(settings)
    if method == "token" and not settings.openbao_token:
        return ["OPENBAO_TOKEN: required (or OPENBAO_ROLE_ID + OPENBAO_SECRET_ID, or OPENBAO_AUTH=gcp + OPENBAO_ROLE)"]
    if method == "approle" and not (settings.openbao_role_id and settings.openbao_secret_id):
        return ["OPENBAO_ROLE_ID and OPENBAO_SECRET_ID: both are required for AppRole"]
    if method == "gcp" and not settings.openbao_role:
        return ["OPENBAO_ROLE: required with OPENBAO_AUTH=gcp (the gcp auth method's role)"]
    return []


def token_caller_problems(settings: Settings) -> list[str]:
    """token_fetch's own start-up rule (checked by that function only: the others are not given the keys)."""
    if settings.is_production and not settings.internal_api_keys and not settings.token_invokers:
        return ["INTERNAL_API_KEYS or TOKEN_INVOKERS: the token endpoint needs its callers in production"]
    return []


def production_problems(settings: Settings) -> list[str]:
    problems = []
    if settings.auth_mode == "dev":
        problems.append("AUTH_MODE: 'dev' is refused when ENVIRONMENT=production (use oidc)")
    if settings.token_invokers and not settings.token_audience:
        problems.append("TOKEN_AUDIENCE: required with TOKEN_INVOKERS (the token function's URL)")
    if not (settings.scheduler_service_account and settings.refresh_audience):
        problems.append("SCHEDULER_SERVICE_ACCOUNT and REFRESH_AUDIENCE: production checks the scheduler's identity")
    if not settings.data_keys and not settings.data_key_secret and not settings.data_key_transit:
        problems.append("DATA_KEY_SECRET: a data key is required in production (or DATA_KEY_TRANSIT, or DATA_KEYS)")
    if settings.openbao_addr and not settings.openbao_addr.startswith("https://"):
        problems.append("OPENBAO_ADDR: production reaches OpenBao over https only")
    if settings.dialect == "sqlite":
        problems.append("DATABASE_URL: production needs PostgreSQL or MySQL (INSTANCE_CONNECTION_NAME or DATABASE_URL)")
    if not settings.public_base_url or not settings.public_base_url.startswith("https://"):
        problems.append("PUBLIC_BASE_URL: production needs the broker's public https origin")
    if settings.secret_manager_endpoint:
        problems.append("SECRET_MANAGER_ENDPOINT: an emulator endpoint is refused in production")
    if settings.tasks_endpoint:
        problems.append("TASKS_ENDPOINT: an emulator endpoint is refused in production")
    plain = [n for n, url in enumerate(settings.webhook_urls, start=1) if not url.startswith("https://")]
    if plain:
        problems.append(f"WEBHOOK_URLS: production delivers over https only (endpoint {plain[0]} is http)")
    return problems
