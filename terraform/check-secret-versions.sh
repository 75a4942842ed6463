#!/usr/bin/env bash
# Check that each SECRET:VERSION exists and is enabled in PROJECT, before a Cloud Run revision needs it:
#   terraform/check-secret-versions.sh PROJECT broker-data-key:1 broker-internal-api-keys:latest ...
# terraform runs it before creating the services (terraform_data.secret_versions); operators can run it by hand.
# It reads versions' states only (`gcloud secrets versions describe`), never their values.
set -uo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 PROJECT SECRET:VERSION..." >&2
  exit 2
fi
project=$1
shift

missing=0
for pair in "$@"; do
  secret=${pair%%:*}
  version=${pair##*:}
  state=$(gcloud secrets versions describe "$version" --secret "$secret" --project "$project" \
            --format 'value(state)' 2>/dev/null) || state=""
  if [ "$state" != "ENABLED" ]; then
    missing=$((missing + 1))
    echo "missing: version ${version} of secret ${secret} is ${state:-absent} (it must be ENABLED); add it with" >&2
    echo "  printf %s \"\$VALUE\" | gcloud secrets versions add ${secret} --project ${project} --data-file=-" >&2
  fi
done
if [ "$missing" -gt 0 ]; then
  echo "${missing} secret version(s) missing: add them (README, Deploy) and run terraform apply again" >&2
  exit 1
fi
echo "all ${#} secret versions are enabled"
