"""A first `terraform apply` and a first Cloud Build run that succeed: what the HCL (python-hcl2, offline) must say so
that each step of the README's Deploy section works against Google Cloud on the first try."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.infra.test_terraform import (
    ROOT,
    TERRAFORM,
    _variable,
    blocks,
    cloudbuild,
    locals_,
    resource,
    resources,
    terraform,
    unquote,
)

README = (ROOT / "README.md").read_text(encoding="utf-8")
DEPLOY = README[README.index("## Deploy") : README.index("## Layout")]
REFERENCE = re.compile(r"\b(google_[a-z0-9_]+|terraform_data)\.([a-z0-9_]+)\b")


def outputs() -> dict[str, dict[str, Any]]:
    return {str(unquote(k)): v for block in terraform().get("output", []) for k, v in block.items()}


def service() -> dict[str, Any]:
    return resource("google_cloud_run_v2_service", "function")


def container(body: dict[str, Any], *path: str) -> dict[str, Any]:
    (found,) = blocks(body, *path)
    return found


def functions() -> dict[str, dict[str, Any]]:
    return {fn: {k: unquote(v) for k, v in spec.items()} for fn, spec in locals_()["functions"].items()}


# --- 1. secrets.create is checked on the project: granted without the name condition, and nothing else is -------


def secret_roles() -> dict[str, set[str]]:
    return {
        role: {str(unquote(p)) for p in spec["permissions"]}
        for role, spec in locals_()["integration_secret_roles"].items()
    }


def test_secret_create_is_a_role_of_its_own_granted_without_the_name_condition():
    creating = {role for role, permissions in secret_roles().items() if "secretmanager.secrets.create" in permissions}
    assert len(creating) == 1, f"secretmanager.secrets.create must be in one role of its own, found in {creating}"
    (creator,) = creating
    assert secret_roles()[creator] == {"secretmanager.secrets.create"}, "creating an empty secret only: nothing else"
    grants = [
        body for _, _, body in resources("google_project_iam_member") if "integration_secret" in str(body["role"])
    ]
    unconditioned = [body for body in grants if not body.get("condition")]
    assert len(unconditioned) == 1, "one unconditioned grant: of the create role"
    (create,) = unconditioned
    assert f'["{creator}"]' in create["role"] or creator in str(create["role"]), create["role"]
    conditioned_roles = " ".join(str(body["for_each"]) for body in grants if body.get("condition"))
    assert "integration_secret_grants" in conditioned_roles
    access = {fn: [unquote(r) for r in roles] for fn, roles in locals_()["integration_secret_access"].items()}
    creators = sorted(fn for fn, roles in access.items() if creator in roles)
    assert creators == ["integrations", "oauth_callback"], creators


def test_reading_writing_and_destroying_stay_prefix_conditioned():
    grants = locals_()["integration_secret_grants"]
    assert "!contains(local.unconditioned_secret_roles" in grants or "unconditioned_secret_roles" in grants, grants
    for role, permissions in secret_roles().items():
        if role != "creator":
            assert "secretmanager.secrets.create" not in permissions, role


def test_every_function_may_probe_the_secret_store_for_ready():
    """/ready reads a never-created name under the prefix: NOT_FOUND needs secrets.get, or it is PERMISSION_DENIED."""
    access = {fn: [str(unquote(r)) for r in roles] for fn, roles in locals_()["integration_secret_access"].items()}
    for fn in functions():
        permissions = set().union(*(secret_roles()[role] for role in access.get(fn, [])))
        assert "secretmanager.secrets.get" in permissions, f"{fn} cannot answer /ready: no secretmanager.secrets.get"


# --- 2. the Cloud Build test step has Node >= 20 and PostgreSQL from Debian, and runs what CI runs ---------------

NODE_20_DEBIAN = {"trixie", "forky"}  # bookworm ships Node 18; trixie Node 20 and PostgreSQL 17


def test_cloud_build_tests_on_a_debian_with_node_20():
    image = cloudbuild()["substitutions"]["_PYTHON_IMAGE"]
    codename = image.rsplit("-", 1)[-1]
    assert codename in NODE_20_DEBIAN, f"{image}: its Debian must ship Node.js >= 20 (trixie or later)"
    tests = next(step for step in cloudbuild()["steps"] if step["id"] == "tests")
    assert tests["name"] == "${_PYTHON_IMAGE}"
    assert tests["args"][-1] == "bash .ci/run", "the tests step runs CI's own entry point"
    assert (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().endswith("make test")


# --- 3. token_fetch's ingress: internal (same-project VPC) or all (IAM + API key as the gates) -----------------


def test_token_fetch_ingress_is_a_documented_choice():
    variable = _variable("token_fetch_ingress")
    assert unquote(variable["default"]) == "internal"
    conditions = " ".join(v["condition"] for v in variable["validation"])
    assert '"internal"' in conditions
    assert '"all"' in conditions
    ingress = functions()["token_fetch"]["ingress"]
    assert "var.token_fetch_ingress" in str(ingress), ingress
    mapping = locals_()["token_fetch_ingress"]
    assert {k: unquote(v) for k, v in mapping.items()} == {
        "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
        "all": "INGRESS_TRAFFIC_ALL",
    }
    assert service()["ingress"] == "${each.value.ingress}"
    assert service()["invoker_iam_disabled"] == "${each.value.public}"  # run.invoker stays a gate with `all`
    assert "token_fetch_ingress" in DEPLOY


def test_same_project_callers_get_a_subnet_with_private_google_access_and_nat():
    subnet = resource("google_compute_subnetwork", "callers")
    assert "var.caller_subnet_cidr" in str(subnet["count"])
    assert subnet["private_ip_google_access"] is True
    nat = resource("google_compute_router_nat", "callers")
    assert unquote(nat["source_subnetwork_ip_ranges_to_nat"]) == "LIST_OF_SUBNETWORKS"
    assert "google_compute_subnetwork.callers" in str(nat["subnetwork"])
    callers = outputs()["token_fetch_callers"]
    assert "ALL_TRAFFIC" in str(callers["value"])
    assert "caller_subnet_cidr" in DEPLOY
    assert "all-traffic" in DEPLOY


# --- 4. ALLOWED_CIDRS reaches token_fetch only --------------------------------------------------------------


def test_allowed_cidrs_is_set_on_token_fetch_only():
    assert "ALLOWED_CIDRS" not in locals_()["settings"], "local.settings reaches every function and the job"
    per_function = locals_()["function_settings"]
    assert "ALLOWED_CIDRS" in per_function, per_function
    assert 'if fn == "token_fetch"' in per_function, per_function


# --- 5. the migration job retries (Direct VPC egress may delay the first connection) -----------------------


def test_the_migration_job_retries():
    job = resource("google_cloud_run_v2_job", "migrate")
    task = container(job, "template", "template")
    assert int(task["max_retries"]) >= 2
    args = str(container(job, "template", "template", "containers")["args"])
    assert "--connect-timeout" in args


# --- 6. every resource waits for the APIs it needs ---------------------------------------------------------


def test_every_resource_depends_on_api_enablement():
    bodies = {(rtype, name): body for rtype, name, body in resources()}
    waits: dict[tuple[str, str], bool] = {("google_project_service", "enabled"): True}

    def text(value: object, seen_locals: frozenset[str] = frozenset()) -> str:
        """The body's text with the locals it uses spelled out (a for_each over a local references resources)."""
        out = str(value)
        for name in set(re.findall(r"local\.(\w+)", out)) - seen_locals:
            if name in locals_():
                out += text(locals_()[name], seen_locals | {name})
        return out

    def reaches(key: tuple[str, str], seen: frozenset[tuple[str, str]]) -> bool:
        if key in waits:
            return waits[key]
        refs = {(t, n) for t, n in REFERENCE.findall(text(bodies[key])) if (t, n) in bodies} - seen - {key}
        waits[key] = any(reaches(ref, seen | {key}) for ref in refs)
        return waits[key]

    lonely = sorted(f"{t}.{n}" for t, n in bodies if t.startswith("google_") and not reaches((t, n), frozenset()))
    assert not lonely, f"these do not wait for google_project_service.enabled (add depends_on): {lonely}"


def test_every_api_a_resource_needs_is_enabled():
    services = set(re.findall(r'"([a-z0-9.-]+\.googleapis\.com)"', str(locals_()["services"])))
    needs = {
        "google_storage_bucket": "storage.googleapis.com",
        "google_pubsub_topic": "pubsub.googleapis.com",
        "google_logging_metric": "logging.googleapis.com",
        "google_monitoring_alert_policy": "monitoring.googleapis.com",
        "google_monitoring_dashboard": "monitoring.googleapis.com",
    }
    for rtype, api in needs.items():
        if resources(rtype):
            assert api in services, f"{rtype} needs {api} in apis.tf"


# --- 7. the Cloud Build source bucket exists, the build account reads it, the README submits with it -----------


def test_the_build_source_bucket_is_created_and_readable_by_the_build_account():
    bucket = resource("google_storage_bucket", "build_source")
    assert bucket["uniform_bucket_level_access"] is True
    assert unquote(bucket["public_access_prevention"]) == "enforced"
    grant = resource("google_storage_bucket_iam_member", "build_source")
    assert "google_storage_bucket.build_source" in grant["bucket"]
    assert unquote(grant["role"]) == "roles/storage.objectViewer"
    assert "google_service_account.build.email" in grant["member"]
    assert "build_source_bucket" in outputs()
    assert "--gcs-source-staging-dir" in DEPLOY
    assert "--gcs-source-staging-dir" in (ROOT / "cloudbuild.yaml").read_text(encoding="utf-8")


# --- 8. a destroy does not fail on database users that own or were granted objects ---------------------------


@pytest.mark.parametrize("rtype", ["google_sql_user", "google_sql_database"])
def test_database_users_and_the_database_are_abandoned_on_destroy(rtype):
    found = resources(rtype)
    assert found
    for _, name, body in found:
        assert unquote(body.get("deletion_policy")) == "ABANDON", f"{rtype}.{name}: deletion_policy = ABANDON"


# --- 9. the build account deploys the five services and the job, nothing else -----------------------------


def test_the_build_account_has_no_cloud_run_role_on_the_project():
    for _, name, body in resources("google_project_iam_member"):
        if "google_service_account.build" in str(body["member"]):
            assert "roles/run." not in str(body), f"google_project_iam_member.{name} gives the build a Cloud Run role"
    services = resource("google_cloud_run_v2_service_iam_member", "build")
    assert "google_cloud_run_v2_service.function" in str(services["for_each"])
    assert unquote(services["role"]) == "roles/run.developer"
    job = resource("google_cloud_run_v2_job_iam_member", "build")
    assert "google_cloud_run_v2_job.migrate" in job["name"]
    assert unquote(job["role"]) == "roles/run.developer"


# --- 10. database connections: every instance's pool fits under max_connections ----------------------------


def number(value: object) -> int:
    return int(str(unquote(value)))


def connection_budget(max_instances: dict[str, int], pools: dict[str, int], overflow: int) -> int:
    spec = locals_()
    per_function = sum(max_instances[fn] * (pools[fn] + overflow) for fn in functions())
    hot_path = max_instances["token_fetch"] * pools["token_fetch"]  # its raw pool, beside the engine's
    return per_function + hot_path + number(spec["migrate_connections"]) + number(spec["db_reserved_connections"])


def defaults() -> tuple[dict[str, int], dict[str, int], int, int]:
    fns = functions()
    return (
        {fn: number(f["max_instances"]) for fn, f in fns.items()},
        {fn: number(f["db_pool_size"]) for fn, f in fns.items()},
        number(_variable("db_max_overflow")["default"]),
        number(_variable("db_max_connections")["default"]),
    )


def test_the_default_connection_budget_fits_under_max_connections():
    max_instances, pools, overflow, limit = defaults()
    assert connection_budget(max_instances, pools, overflow) <= limit


def test_the_budget_check_fails_when_instances_would_exceed_it():
    """The arithmetic can fail: today's 10 instances of each function with a pool of 5 + 2 would not fit."""
    max_instances, _pools, _overflow, limit = defaults()
    assert connection_budget(dict.fromkeys(max_instances, 10), dict.fromkeys(max_instances, 5), 2) > limit


def test_terraform_checks_the_budget_and_sets_the_flag():
    spec = locals_()
    formula = str(spec["db_connection_budget"])
    assert "max_instances * (s.db_pool_size + var.db_max_overflow)" in formula, formula
    assert "local.migrate_connections" in formula
    assert "local.hot_path_connections" in formula
    assert "local.db_reserved_connections" in formula
    instance = resource("google_sql_database_instance", "this")
    (settings,) = instance["settings"]
    flags = {unquote(f["name"]): f["value"] for f in settings["database_flags"]}
    assert "var.db_max_connections" in str(flags["max_connections"])
    conditions = " ".join(str(p["condition"]) for p in instance["lifecycle"][0]["precondition"])
    assert "local.db_connection_budget <= var.db_max_connections" in conditions


def test_each_service_takes_its_scaling_and_pool_from_the_variables():
    (scaling,) = blocks(service(), "template", "scaling")
    assert scaling["max_instance_count"] == "${local.scaling[each.key].max_instances}"
    per_function = locals_()["function_settings"]
    assert "DB_POOL_SIZE" in per_function
    assert "local.scaling[fn].db_pool_size" in per_function
    assert "DB_MAX_OVERFLOW" in per_function
    assert "var.db_max_overflow" in per_function
    scaling_local = str(locals_()["scaling"])
    assert "var.max_instances" in scaling_local
    assert "var.db_pool_size" in scaling_local
    job = container(resource("google_cloud_run_v2_job", "migrate"), "template", "template", "containers")
    job_env = {unquote(e["name"]): e["value"] for e in job["env"]}
    assert {"DB_POOL_SIZE", "DB_MAX_OVERFLOW"} <= set(job_env)


def test_the_example_tfvars_fit_the_budget_too():
    with (TERRAFORM / "terraform.tfvars.example").open(encoding="utf-8") as handle:
        example = hcl2.load(handle)
    max_instances, pools, overflow, limit = defaults()
    max_instances |= {k: int(v) for k, v in example.get("max_instances", {}).items()}
    pools |= {k: int(v) for k, v in example.get("db_pool_size", {}).items()}
    overflow = int(example.get("db_max_overflow", overflow))
    limit = int(example.get("db_max_connections", limit))
    assert connection_budget(max_instances, pools, overflow) <= limit


# --- 11. startup and liveness probes on /health --------------------------------------------------------------


@pytest.mark.parametrize("probe", ["startup_probe", "liveness_probe"])
def test_each_service_is_probed_on_health(probe):
    (found,) = container(service(), "template", "containers")[probe]
    (http_get,) = found["http_get"]
    assert unquote(http_get["path"]) == "/health"
    assert int(found["timeout_seconds"]) <= int(found["period_seconds"])


# --- 12. a revision never starts without the secret versions it needs ----------------------------------------


def test_services_wait_for_a_check_of_every_secret_version_they_read():
    check = resource("terraform_data", "secret_versions")
    assert check["triggers_replace"] == "${local.required_secret_versions}"
    (provisioner,) = [body for p in check["provisioner"] for kind, body in p.items() if unquote(kind) == "local-exec"]
    assert "check-secret-versions.sh" in provisioner["command"]
    assert "local.required_secret_versions" in provisioner["command"]
    assert "${terraform_data.secret_versions}" in service()["depends_on"]
    required = str(locals_()["required_secret_versions"])
    for secret, version in [
        ('config[\\"data-key\\"]', "var.data_key_version"),
        ('config[\\"internal-api-keys\\"]', "var.internal_api_keys_version"),
        ("client-secret-", "p.client_secret_version"),
    ]:
        assert secret.replace("\\", "") in required.replace("\\", ""), (secret, required)
        assert version in required, (version, required)


def test_the_secret_check_is_a_documented_pre_apply_step():
    assert (TERRAFORM / "check-secret-versions.sh").exists()
    assert "check-secret-versions.sh" in DEPLOY


# --- 13. metrics and alerts from the structured logs, without an agent --------------------------------------

METRICS = {"refresh_outcomes", "reauth_required", "secret_manager_calls", "token_fetch_responses", "refresh_runs"}


def test_log_based_metrics_alerts_and_a_dashboard_exist():
    metrics = {name for _, name, _ in resources("google_logging_metric")}
    assert metrics >= METRICS, f"missing log-based metrics: {sorted(METRICS - metrics)}"
    alerts = {name for _, name, _ in resources("google_monitoring_alert_policy")}
    assert alerts >= {"refresh_failure_rate", "reauth_required_rise", "secret_manager_quota", "refresh_stalled"}
    assert resources("google_monitoring_dashboard")


def filter_fields(filter_text: str) -> set[str]:
    return set(re.findall(r"jsonPayload\.([A-Za-z_]+)", filter_text))


def test_metrics_read_only_fields_and_events_the_functions_log():
    """The fields and `event` values every log-based metric reads, against tests/infra/test_logs.py's lists of what
    the code is proven to log."""
    from tests.infra.test_logs import LOGGED_EVENTS, LOGGED_FIELDS

    for _, name, body in resources("google_logging_metric"):
        text = str(body["filter"]) + str(body.get("label_extractors", "")) + str(body.get("value_extractor", ""))
        unknown = filter_fields(text) - LOGGED_FIELDS
        assert not unknown, f"google_logging_metric.{name} reads {sorted(unknown)}, which no function logs"
        events = set(re.findall(r'jsonPayload\.event=\\"(\w+)\\"', text))
        assert events <= LOGGED_EVENTS, f"google_logging_metric.{name} selects events {sorted(events - LOGGED_EVENTS)}"


def test_alerts_watch_the_metrics_and_notify_the_configured_channels():
    for _, name, body in resources("google_monitoring_alert_policy"):
        assert body["notification_channels"] == "${var.alert_notification_channels}", name
        assert "google_logging_metric." in str(body["conditions"]), f"{name} does not watch a log-based metric"
    stalled = resource("google_monitoring_alert_policy", "refresh_stalled")
    assert blocks(stalled, "conditions", "condition_absent"), "a stalled job is the absence of finished runs"
    rate = resource("google_monitoring_alert_policy", "refresh_failure_rate")
    (threshold,) = blocks(rate, "conditions", "condition_threshold")
    assert "metric.label.outcome=" in threshold["filter"]
    assert "failed" in threshold["filter"]
    assert "denominator_filter" in threshold


def test_the_dashboard_shows_every_log_based_metric():
    text = (TERRAFORM / "dashboard.json").read_text(encoding="utf-8")
    dashboard = json.loads(text)  # valid JSON before templatefile fills the metric types in
    assert dashboard["mosaicLayout"]["tiles"]
    arguments = str(resource("google_monitoring_dashboard", "broker")["dashboard_json"])
    for metric in METRICS:
        assert "${" + metric + "}" in text, f"the dashboard does not show {metric}"
        assert f"google_logging_metric.{metric}.name" in arguments
    assert "run.googleapis.com/request_latencies" in text  # token_fetch's latency: Cloud Run's own metric


FAKE_GCLOUD = """#!/usr/bin/env bash
# gcloud secrets versions describe VERSION --secret SECRET --project P --format 'value(state)', from $FAKE_STATES
version=$4; secret=$6
state=$(printf '%s\\n' $FAKE_STATES | sed -n "s|^${secret}:${version}=||p")
[ -n "$state" ] || { echo "NOT_FOUND: Secret Version [$secret/$version] not found" >&2; exit 1; }
echo "$state"
"""


def run_check(tmp_path: Path, states: str, *pairs: str) -> subprocess.CompletedProcess[str]:
    gcloud = tmp_path / "gcloud"
    gcloud.write_text(FAKE_GCLOUD, encoding="utf-8")
    gcloud.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "FAKE_STATES": states}
    script = TERRAFORM / "check-secret-versions.sh"
    return subprocess.run(
        ["bash", str(script), "my-project", *pairs], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_the_secret_check_passes_when_every_version_is_enabled(tmp_path):
    done = run_check(tmp_path, "broker-data-key:1=ENABLED broker-internal-api-keys:latest=ENABLED",
                     "broker-data-key:1", "broker-internal-api-keys:latest")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "all 2 secret versions are enabled" in done.stdout


def test_the_secret_check_names_each_missing_or_disabled_version_and_how_to_add_it(tmp_path):
    states = "broker-data-key:1=ENABLED broker-client-secret-github:latest=DISABLED"
    pairs = ("broker-data-key:1", "broker-client-secret-github:latest", "broker-internal-api-keys:latest")
    done = run_check(tmp_path, states, *pairs)
    assert done.returncode == 1
    assert "version latest of secret broker-client-secret-github is DISABLED" in done.stderr
    assert "version latest of secret broker-internal-api-keys is absent" in done.stderr
    assert "gcloud secrets versions add broker-internal-api-keys --project my-project --data-file=-" in done.stderr
    assert "broker-data-key" not in done.stderr
    assert "2 secret version(s) missing" in done.stderr
