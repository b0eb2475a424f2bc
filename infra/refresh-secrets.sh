#!/usr/bin/env bash
# Makes the stack's three functions read their secrets again: after putting a new value
# into one of them (aws secretsmanager put-secret-value: the first deploy, a rotation).
# Each function reads its secrets once, when an execution environment starts; a change to
# its configuration (here, its description) makes Lambda start new environments for the
# invocations that follow. The next `sam deploy` puts the template's description back.
#
#   bash infra/refresh-secrets.sh [STACK]      STACK defaults to opkit
#
# Needs the AWS CLI with credentials for the stack's account and region.
set -euo pipefail

stack="${1:-opkit}"
stamp="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
for logical in IngressFunction WorkerFunction ExpiryFunction; do
  name="$(aws cloudformation describe-stack-resource --stack-name "$stack" \
    --logical-resource-id "$logical" \
    --query StackResourceDetail.PhysicalResourceId --output text)"
  description="$(aws lambda get-function-configuration --function-name "$name" \
    --query Description --output text)"
  description="${description%% (secrets read *}"
  aws lambda update-function-configuration --function-name "$name" \
    --description "$description (secrets read $stamp)" >/dev/null
  aws lambda wait function-updated --function-name "$name"
  printf '==> %s: new execution environments read the secrets from now on\n' "$name" >&2
done
