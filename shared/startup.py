"""What an instance checks before it serves: how the settings and the provider catalog fit together.

Pure over its inputs (settings, catalog, the environment): no client is built and nothing is called, so the
entry modules can run it when functions-framework loads them and a misconfigured revision never becomes ready.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.config import Settings
from shared.config_values import provider_env_prefix
from shared.providers.catalog import URL_FIELDS, Catalog

EGRESS_HINT = "production connects only to public addresses (EGRESS_ALLOWED_NETWORKS allows a private network)"


def problems(
    settings: Settings, catalog: Catalog, environ: Mapping[str, str], *, client_secrets: bool, token_callers: bool
) -> list[str]:
    """Each problem names the variable and says what was expected; never a value.

    `client_secrets`: this function exchanges, refreshes or revokes tokens, so each client id needs its secret
    (oauth_start only builds authorization URLs: ids alone are fine there, as terraform deploys it).
    `token_callers`: this is token_fetch, which must know its callers in production (only it is given the keys).
    """
    found = [*client_problems(catalog, environ, client_secrets=client_secrets), *egress_problems(settings, catalog)]
    if settings.is_production and settings.pubsub_topic and environ.get("PUBSUB_EMULATOR_HOST"):
        found.append("PUBSUB_EMULATOR_HOST: an emulator is refused in production (PUBSUB_TOPIC is set)")
    return [*settings.token_caller_problems(), *found] if token_callers else found


def client_problems(catalog: Catalog, environ: Mapping[str, str], *, client_secrets: bool) -> list[str]:
    found = []
    oauth = [provider for provider in catalog if provider.auth_mode == "oauth2"]
    for provider in oauth:
        prefix = provider_env_prefix(provider.id)
        has_id, has_secret = (
            bool(environ.get(f"{prefix}_{part}", "").strip()) for part in ("CLIENT_ID", "CLIENT_SECRET")
        )
        if has_secret and not has_id:
            found.append(f"{prefix}_CLIENT_SECRET: set without {prefix}_CLIENT_ID (provider {provider.id!r})")
        elif has_id and not has_secret and client_secrets:
            found.append(
                f"{prefix}_CLIENT_SECRET: required with {prefix}_CLIENT_ID (provider {provider.id!r}): this "
                "function exchanges, refreshes or revokes its tokens"
            )
    for provider in oauth:
        for alias in provider.aliases:
            alias_prefix = provider_env_prefix(alias)
            for part in ("CLIENT_ID", "CLIENT_SECRET"):
                if _set(environ, f"{alias_prefix}_{part}"):
                    found.append(
                        f"{alias_prefix}_{part}: {alias!r} is an alias of provider {provider.id!r}; "
                        f"set {provider_env_prefix(provider.id)}_{part} instead"
                    )
    return found


def egress_problems(settings: Settings, catalog: Catalog) -> list[str]:
    """Production: endpoints whose host is, as written, a metadata name, loopback or a refused IP literal. Names
    are resolved and checked again on every connection (shared/adapters/egress.py)."""
    policy = settings.egress_policy
    if policy is None:
        return []
    found = []
    where = "PROVIDERS_FILE: " if settings.providers_file else ""
    for provider in catalog:
        if provider.auth_mode != "oauth2":
            continue
        resolved = provider.with_base_url(settings.base_url)
        for name in URL_FIELDS:
            url = getattr(resolved, name)
            if url and (reason := policy.url_refusal(url)):
                found.append(f"{where}providers.{provider.id}.{name}: its host is {reason}; {EGRESS_HINT}")
    for name in ("auth_issuer", "auth_jwks_url"):
        url = getattr(settings, name)
        if url and (reason := policy.url_refusal(url)):
            found.append(f"{name.upper()}: its host is {reason}; {EGRESS_HINT}")
    for number, url in enumerate(settings.webhook_urls, start=1):
        if reason := policy.url_refusal(url):
            found.append(f"WEBHOOK_URLS: the host of endpoint {number} is {reason}; {EGRESS_HINT}")
    return found


def _set(environ: Mapping[str, str], name: str) -> bool:
    return bool(environ.get(name, "").strip())
