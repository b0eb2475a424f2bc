#!/usr/bin/env bash
# Prints infra/manifest.yaml with the three request URLs of a deployed stack filled in.
#
#   bash infra/manifest.sh [STACK] > catbot-manifest.yaml      (STACK default: opkit)
#
# Needs the AWS CLI and credentials for the stack's account; the region comes from the
# usual AWS settings (AWS_REGION, --profile via AWS_PROFILE, ~/.aws/config).
set -euo pipefail
cd "$(dirname "$0")/.."

stack="${1:-opkit}"

output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

commands="$(output SlackCommandsUrl)"
events="$(output SlackEventsUrl)"
interactions="$(output SlackInteractionsUrl)"
for url in "$commands" "$events" "$interactions"; do
  case "$url" in
    https://*) ;;
    *) echo "stack $stack has no Slack URLs in its outputs (got '$url'); is it deployed?" >&2; exit 1 ;;
  esac
done

placeholder='https://YOUR-API-ID.execute-api.REGION.amazonaws.com'
sed -e "s|$placeholder/slack/commands|$commands|" \
    -e "s|$placeholder/slack/events|$events|" \
    -e "s|$placeholder/slack/interactions|$interactions|" \
    infra/manifest.yaml
