"""The terraform deploys what the code is: every function with its entry point, only settings the code reads (and
enough of them for production), IAM conditions written with the project number, no Secret Manager admin.

Offline: python-hcl2 parses terraform/*.tf (it keeps HCL's quotes in strings: `"\\"x\\""` for a literal, `"${...}"`
for an expression). `terraform validate/plan` need the registry and are not run here."""

from __future__ import annotations

import ast
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from shared.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
FUNCTIONS = ROOT / "functions"

# Set by the platform or read by functions-framework itself, not by shared/config.py.
PLATFORM_VARS = {"FUNCTION_TARGET", "FUNCTION_SOURCE", "FUNCTION_SIGNATURE_TYPE", "PORT"}
PROVIDER_ID = "<PROVIDER>_CLIENT_ID"
PROVIDER_SECRET = "<PROVIDER>_CLIENT_SECRET"
RUN_RESOURCES = ("google_cloud_run_v2_service", "google_cloud_run_v2_job")


def unquote(value: object) -> object:
    """`"\\"text\\""` -> `text` for HCL string literals; expressions (`${...}`) and other values are returned as is."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@cache
def terraform() -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            for key, blocks in hcl2.load(handle).items():
                if isinstance(blocks, list):
                    merged.setdefault(key, []).extend(blocks)
    return merged


def resources(kind: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every resource, or of one type."""
    found = []
    for block in terraform().get("resource", []):
        for quoted_type, named in block.items():
            for quoted_name, body in named.items():
                rtype, name = str(unquote(quoted_type)), str(unquote(quoted_name))
                if kind is None or rtype == kind:
                    found.append((rtype, name, body))
    return found


def resource(kind: str, name: str) -> dict[str, Any]:
    matches = [body for rtype, rname, body in resources(kind) if rname == name]
    assert len(matches) == 1, f"expected one {kind}.{name}, found {len(matches)}"
    return matches[0]


@cache
def locals_() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in terraform().get("locals", []):
        for key, value in block.items():
            if not key.startswith("__"):
                assert key not in merged, f"local.{key} is defined twice"
                merged[key] = value
    return merged


def blocks(body: dict[str, Any], *path: str) -> list[dict[str, Any]]:
    """Nested blocks along `path` (each level a list of blocks in python-hcl2's output)."""
    level = [body]
    for name in path:
        level = [child for item in level for child in item.get(name, [])]
    return level


def code_functions() -> dict[str, str]:
    """Entry point -> source path, for each functions/*.py that defines a functions_framework.http function."""
    found: dict[str, str] = {}
    for path in sorted(FUNCTIONS.glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and any(_is_http(d) for d in node.decorator_list):
                assert node.name not in found, f"two functions are named {node.name}"
                found[node.name] = f"functions/{path.name}"
    return found


def _is_http(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (
        isinstance(target, ast.Attribute)
        and target.attr == "http"
        and isinstance(target.value, ast.Name)
        and target.value.id == "functions_framework"
    )


def deployed_functions() -> dict[str, dict[str, Any]]:
    return {name: {k: unquote(v) for k, v in spec.items()} for name, spec in locals_()["functions"].items()}


# --- (a) every function is deployed, with its entry point; nothing else is --------------------------------------


def test_functions_dir_has_functions():
    assert code_functions(), "no functions_framework.http function found in functions/"


def test_every_function_in_the_code_is_deployed_and_nothing_else():
    in_code, deployed = code_functions(), deployed_functions()
    missing = sorted(set(in_code) - set(deployed))
    unknown = sorted(set(deployed) - set(in_code))
    assert not missing, f"functions/ defines {missing} but terraform (local.functions in main.tf) does not deploy them"
    assert not unknown, f"terraform deploys {unknown} but functions/ defines no such functions_framework.http function"
    for name, source in in_code.items():
        assert deployed[name]["source"] == source, f"{name} is defined in {source}, terraform loads it from elsewhere"


def test_each_service_runs_its_function_from_its_file():
    service = resource("google_cloud_run_v2_service", "function")
    assert service["for_each"] == "${local.functions}"
    (container,) = blocks(service, "template", "containers")
    static_env = {unquote(env["name"]): env["value"] for env in container.get("env", [])}
    assert static_env["FUNCTION_TARGET"] == "${each.key}"  # the key of local.functions is the entry point
    assert static_env["FUNCTION_SOURCE"] == "${each.value.source}"
    assert container["image"] == "${var.image}"


def test_ci_owns_the_image_tag():
    for rtype, name, body in resources():
        if rtype in RUN_RESOURCES:
            ignored = " ".join(body["lifecycle"][0]["ignore_changes"])
            assert ".image" in ignored, f"{rtype}.{name} must ignore image changes (CI deploys the image)"


# --- (b) every env var terraform sets is a setting the code reads, and they make a valid production config -------


def settings_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def env_names_from(for_each: str) -> set[str]:
    """The names a dynamic `env` block's for_each yields; the test reads the locals it knows."""
    local = locals_()
    if for_each == "${local.settings_env}":
        assert "local.settings" in local["settings_env"], "settings_env must be built from local.settings"
        return set(local["settings"])
    if for_each == "${local.function_settings[each.key]}":
        expression = local["function_settings"]
        names = set(re.findall(r"\b([A-Z][A-Z0-9_]+)\s*=(?!=)", expression))
        if "local.events_env" in expression:
            assert "WEBHOOK_URLS" in str(local["events_env"]), local["events_env"]
            names.add("WEBHOOK_URLS")
        return names
    if for_each == "${local.client_id_env}":
        assert re.search(r'_CLIENT_ID\\?"\s*=>', local["client_id_env"]), local["client_id_env"]
        return {PROVIDER_ID}
    if for_each == "${local.function_secret_env[each.key]}":
        expression = local["function_secret_env"]
        used = set(re.findall(r"local\.(\w+)", expression))
        assert used <= {"client_secret_env", "internal_api_keys_env", "events_secret_env", "functions"}, used
        assert re.search(r'_CLIENT_SECRET\\?"\s*=>', local["client_secret_env"]), local["client_secret_env"]
        assert "WEBHOOK_SECRETS" in str(local["events_secret_env"]), local["events_secret_env"]
        return {PROVIDER_SECRET, "WEBHOOK_SECRETS"} | set(local["internal_api_keys_env"])
    raise AssertionError(f"the test cannot tell which env names `for_each = {for_each}` sets: teach it")


def run_env_names(body: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for container in blocks(body, "template", "containers") + blocks(body, "template", "template", "containers"):
        names |= {str(unquote(env["name"])) for env in container.get("env", [])}
        for dynamic in container.get("dynamic", []):
            for block_name, spec in dynamic.items():
                assert unquote(block_name) == "env", block_name
                names |= env_names_from(spec["for_each"])
    return names


@pytest.mark.parametrize(("rtype", "name"), [(t, n) for t, n, _ in resources() if t in RUN_RESOURCES])
def test_every_env_var_is_a_setting_the_code_reads(rtype, name):
    names = run_env_names(resource(rtype, name))
    unknown = sorted(names - settings_names() - PLATFORM_VARS - {PROVIDER_ID, PROVIDER_SECRET})
    assert not unknown, f"{rtype}.{name} sets {unknown}, which shared/config.py does not read"


def test_the_settings_local_names_only_settings():
    unknown = sorted(set(locals_()["settings"]) - settings_names())
    assert not unknown, f"local.settings sets {unknown}, which shared/config.py does not read"


def test_every_auth_setting_is_wired():
    auth = {name for name in settings_names() if name.startswith("AUTH_")}
    assert auth <= set(locals_()["settings"]), f"terraform does not set {sorted(auth - set(locals_()['settings']))}"


# A plausible value for each setting terraform fills from an expression; literals are taken from the terraform.
SAMPLES = {
    "LOG_LEVEL": "INFO",
    "INSTANCE_CONNECTION_NAME": "my-project:europe-west1:broker-pg",
    "DB_NAME": "broker",
    "DB_USER": "broker-token-fetch@my-project.iam",
    "SECRET_BACKEND": "gcp",
    "GCP_PROJECT": "my-project",
    "SECRET_PREFIX": "broker-int",
    "DATA_KEY_SECRET": "projects/my-project/secrets/broker-data-key/versions/1",
    "PUBLIC_BASE_URL": "https://broker.example.com",
    "ALLOWED_RETURN_URLS": "https://app.example.com/connected",
    "ALLOWED_ORIGINS": "https://app.example.com",
    "AUTH_ISSUER": "https://securetoken.google.com/my-app",
    "AUTH_AUDIENCE": "my-app",
    "AUTH_ENTITY_CLAIM": "sub",
    "AUTH_JWKS_URL": "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com",
    "TOKEN_INVOKERS": "api@my-app.iam.gserviceaccount.com",
    "TOKEN_AUDIENCE": "https://broker-token-fetch-123456789012.europe-west1.run.app",
    "ALLOWED_CIDRS": "10.8.0.0/24",
    "SCHEDULER_SERVICE_ACCOUNT": "broker-scheduler@my-project.iam.gserviceaccount.com",
    "REFRESH_AUDIENCE": "https://broker-token-refresh-123456789012.europe-west1.run.app",
    "INTERNAL_API_KEYS": "k" * 32,
    "PUBSUB_TOPIC": "projects/my-project/topics/broker-events",
    "EVENTS_RETRY_HOURS": "24",
    "WEBHOOK_URLS": "https://hooks.example.com/broker",
    "WEBHOOK_SECRETS": "whsec_" + "d2ViaG9vay1zZWNyZXQtZm9yLXRoZS10ZXN0cw==",
    "GOOGLE_CLIENT_ID": "1234-abc.apps.googleusercontent.com",
    "GOOGLE_CLIENT_SECRET": "a-real-looking-client-secret-value",
}


@pytest.mark.parametrize("function", sorted(code_functions()))
def test_what_terraform_sets_is_a_valid_production_configuration(function, monkeypatch):
    for name in list(os.environ):
        if name.upper() in settings_names() or name.endswith(("_CLIENT_ID", "_CLIENT_SECRET")):
            monkeypatch.delenv(name)
    settings = locals_()["settings"]
    env = {}
    for name, value in settings.items():
        literal = unquote(value)
        if isinstance(literal, str) and "${" not in literal:
            env[name] = literal
        else:
            assert name in SAMPLES, f"add a sample value for {name} to SAMPLES"
            env[name] = SAMPLES[name]
    env["DB_USER"] = SAMPLES["DB_USER"]
    env["GOOGLE_CLIENT_ID"] = SAMPLES["GOOGLE_CLIENT_ID"]
    secret_env = {PROVIDER_SECRET}
    if function in ("token_fetch", "oauth_start"):
        secret_env |= set(locals_()["internal_api_keys_env"])
    for name in secret_env:
        env[name.replace("<PROVIDER>", "GOOGLE")] = SAMPLES[name.replace("<PROVIDER>", "GOOGLE")]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    loaded = load_settings()
    assert loaded.is_production
    assert loaded.auth_mode == "oidc"
    assert loaded.db_private_ip is True


def test_the_data_key_is_pinned_by_version_number():
    value = str(unquote(locals_()["settings"]["DATA_KEY_SECRET"]))
    assert value.endswith("/versions/${var.data_key_version}"), value
    validation = " ".join(v["condition"] for v in _variable("data_key_version")["validation"])
    assert ">= 1" in validation
    assert "floor" in validation


def _variable(name: str) -> dict[str, Any]:
    for block in terraform().get("variable", []):
        for quoted, body in block.items():
            if unquote(quoted) == name:
                return dict(body)
    raise AssertionError(f"no variable {name}")


def test_every_variable_is_typed_and_described():
    for block in terraform()["variable"]:
        for name, body in block.items():
            assert "type" in body, f"variable {name} has no type"
            assert "description" in body, f"variable {name} has no description"


# --- (c) IAM conditions use the project number; (d) nobody is Secret Manager admin ---------------------------


def conditions() -> list[tuple[str, str, str]]:
    found = []
    for rtype, name, body in resources():
        for condition in body.get("condition", []):
            found.append((rtype, name, str(condition["expression"])))
    return found


def test_there_are_conditional_grants_for_integration_secrets():
    secret_grants = [(t, n, e) for t, n, e in conditions() if "/secrets/" in e]
    assert secret_grants, "expected project-level grants on integration secrets limited by a condition"
    for rtype, name, expression in secret_grants:
        assert 'resource.name.startsWith(\\"projects/${data.google_project.' in expression, (rtype, name, expression)
        assert "/secrets/${var.secret_prefix}-" in expression, (rtype, name, expression)


def test_iam_conditions_use_the_project_number_never_the_id():
    assert conditions()
    for rtype, name, expression in conditions():
        projects = re.findall(r"projects/(\$\{[^}]*\}|[^/\\\"]+)", expression)
        assert projects, f"{rtype}.{name}: the condition names no project: {expression}"
        for project in projects:
            assert re.fullmatch(r"\$\{data\.google_project\.\w+\.number\}", project), (
                f"{rtype}.{name}: conditions must name the project by number (data.google_project.<x>.number), "
                f"found {project!r}: a condition written with the project id never matches"
            )
    data_sources = {str(unquote(k)) for block in terraform()["data"] for k in block}
    assert "google_project" in data_sources


def test_secret_manager_custom_roles_are_only_granted_with_a_condition():
    """Except secretmanager.secrets.create, which Secret Manager checks on the project: a name condition on it would
    never match, so its role (that permission alone) is the one granted without the condition."""
    roles = locals_()["integration_secret_roles"]
    unconditioned = [str(unquote(r)) for r in locals_()["unconditioned_secret_roles"]]
    assert unconditioned == ["creator"]
    assert [unquote(p) for p in roles["creator"]["permissions"]] == ["secretmanager.secrets.create"]
    for _, name, body in resources("google_project_iam_member"):
        if "google_project_iam_custom_role.integration_secrets" in str(body["role"]):
            if name == "integration_secret_create":
                assert 'integration_secrets[\\"creator\\"]' in str(body["role"]).replace('"', '\\"'), body["role"]
                assert not body.get("condition")
            else:
                assert body.get("condition"), (
                    f"google_project_iam_member.{name} grants a secret role without a condition"
                )


def test_nobody_is_secret_manager_admin_or_basic_role_on_the_project():
    forbidden = {"roles/secretmanager.admin", "roles/owner", "roles/editor"}
    project_level = ("google_project_iam_member", "google_project_iam_binding", "google_project_iam_policy")
    for rtype, name, body in resources():
        if rtype not in project_level:
            continue
        text = str(body)  # the role, or the literal set a for_each grants
        for role in forbidden:
            assert role not in text, f"{rtype}.{name} grants {role} on the project"


def test_custom_roles_cannot_change_iam_and_only_the_lister_lists_secrets():
    roles = {name: body for _, name, body in resources("google_project_iam_custom_role")}
    assert set(roles) == {"integration_secrets", "secret_lister"}
    assert roles["integration_secrets"]["for_each"] == "${local.integration_secret_roles}"
    for role, spec in locals_()["integration_secret_roles"].items():
        permissions = {str(unquote(p)) for p in spec["permissions"]}
        assert all(p.startswith("secretmanager.") for p in permissions), role
        assert not {"secretmanager.secrets.setIamPolicy", "secretmanager.secrets.list"} & permissions, role
    assert [unquote(p) for p in roles["secret_lister"]["permissions"]] == ["secretmanager.secrets.list"]


def test_only_the_refresh_job_may_list_secrets_for_its_orphan_sweep():
    """Listing is a permission on the project (no secret name to condition on): granted to token_refresh alone,
    and only when integration secrets live in Secret Manager."""
    grant = resource("google_project_iam_member", "secret_lister")
    assert grant["role"] == "${google_project_iam_custom_role.secret_lister[0].id}"
    assert unquote(grant["member"]) == 'serviceAccount:${google_service_account.function["token_refresh"].email}'
    assert "var.secret_backend" in str(grant["count"])
    assert '"gcp"' in str(grant["count"])
    assert str(resource("google_project_iam_custom_role", "secret_lister")["count"]) == str(grant["count"])
    listers = [name for _, name, body in resources("google_project_iam_member") if "secret_lister" in str(body)]
    assert listers == ["secret_lister"]


def test_the_refresh_job_may_delete_integration_secrets_for_the_sweep_but_not_create_them():
    access = locals_()["integration_secret_access"]
    assert [unquote(r) for r in access["token_refresh"]] == ["reader", "rotator", "sweeper"]
    roles = locals_()["integration_secret_roles"]
    assert {str(unquote(p)) for p in roles["sweeper"]["permissions"]} == {
        "secretmanager.secrets.get", "secretmanager.secrets.delete",
    }  # fmt: skip
    granted = {str(unquote(p)) for role in access["token_refresh"] for p in roles[unquote(role)]["permissions"]}
    assert "secretmanager.secrets.create" not in granted


def test_token_fetch_reads_and_rotates_but_cannot_create_or_delete_secrets():
    """token_fetch refreshes in line, so a rotating provider's new token becomes a version; nothing more."""
    access = locals_()["integration_secret_access"]
    assert [unquote(r) for r in access["token_fetch"]] == ["reader", "rotator", "prober"]
    roles = locals_()["integration_secret_roles"]
    granted = {str(unquote(p)) for role in ("reader", "rotator", "prober") for p in roles[role]["permissions"]}
    assert "secretmanager.secrets.create" not in granted
    assert "secretmanager.secrets.delete" not in granted
    assert granted <= {
        "secretmanager.versions.access", "secretmanager.versions.list", "secretmanager.versions.get",
        "secretmanager.versions.add", "secretmanager.versions.destroy", "secretmanager.secrets.get",
    }  # fmt: skip


# --- cloudbuild.yaml deploys what terraform creates --------------------------------------------------------------


def cloudbuild() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "cloudbuild.yaml").read_text(encoding="utf-8")))


def test_cloudbuild_runs_lint_tests_build_migrate_deploy_in_order():
    assert [step["id"] for step in cloudbuild()["steps"]] == ["lint", "tests", "build", "migrate", "deploy"]


def test_cloudbuild_deploys_every_function_terraform_creates():
    substitutions = cloudbuild()["substitutions"]
    assert unquote(_variable("name")["default"]) == substitutions["_PREFIX"]
    deployed = {fn.replace("_", "-") for fn in deployed_functions()}
    assert set(substitutions["_FUNCTIONS"].split()) == deployed
    assert "/${_PREFIX}/" in substitutions["_IMAGE"]  # the repository terraform names after the prefix
    migrate = resource("google_cloud_run_v2_job", "migrate")
    assert unquote(migrate["name"]) == "${var.name}-migrate"
    assert '"${_PREFIX}-migrate"' in cloudbuild()["steps"][3]["args"][1]


def test_only_the_dispatching_function_publishes_events_and_reads_the_webhook_secrets():
    publisher = resource("google_pubsub_topic_iam_member", "events_publisher")
    assert unquote(publisher["role"]) == "roles/pubsub.publisher"
    assert 'function["token_refresh"]' in str(publisher["member"])
    reader = resource("google_secret_manager_secret_iam_member", "webhook_secrets")
    assert 'function["token_refresh"]' in str(reader["member"])
    assert unquote(reader["role"]) == "roles/secretmanager.secretAccessor"


def test_the_events_schedule_posts_dispatch_to_the_refresh_function_as_the_scheduler():
    job = resource("google_cloud_scheduler_job", "events")
    (target,) = blocks(job, "http_target")
    assert str(unquote(target["uri"])).endswith('["token_refresh"].uri}/dispatch')
    (oidc,) = blocks(target, "oidc_token")
    assert "google_service_account.scheduler.email" in str(oidc["service_account_email"])
    assert unquote(job["schedule"]) == "* * * * *"


def test_the_fanout_has_a_queue_per_provider_that_only_the_refresh_function_enqueues_on():
    queue = resource("google_cloud_tasks_queue", "refresh")
    assert "local.refresh_queues" in str(queue["for_each"])
    assert queue["name"] == '"${var.name}-refresh-${each.key}"'  # TASKS_QUEUE_PREFIX-<provider>
    (limits,) = blocks(queue, "rate_limits")
    assert "each.value.max_dispatches_per_second" in str(limits["max_dispatches_per_second"])
    assert "each.value.max_concurrent_dispatches" in str(limits["max_concurrent_dispatches"])
    enqueuer = resource("google_cloud_tasks_queue_iam_member", "refresh_enqueuer")
    assert unquote(enqueuer["role"]) == "roles/cloudtasks.enqueuer"
    assert 'function["token_refresh"]' in str(enqueuer["member"])
    acts_as = resource("google_service_account_iam_member", "refresh_acts_as_scheduler")
    assert "google_service_account.scheduler.name" in str(acts_as["service_account_id"])
    assert unquote(acts_as["role"]) == "roles/iam.serviceAccountUser"
    assert 'function["token_refresh"]' in str(acts_as["member"])
    env = locals_()["fanout_env"]
    assert '"${var.name}-refresh"' in str(env)
    assert "/refresh/shard" in str(env)
    (target,) = blocks(resource("google_cloud_scheduler_job", "refresh"), "http_target")
    assert "/refresh/dispatch" in str(target["uri"])
