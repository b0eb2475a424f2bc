"""Slack Bolt for Python's AWS Lambda handler as a cold Lambda runtime, for opkit-bench.

The same verify-and-ack as Opkit's ingress, without the enqueue: Bolt's
`SlackRequestHandler` with `process_before_response=True` (the documented setting
for Lambda) and a listener that only acks. It polls the Lambda Runtime API named by
AWS_LAMBDA_RUNTIME_API (the 2018-06-01 interface), as Lambda's own Python runtime
does, and answers each invocation with the handler's API Gateway response.
Authorization is a local function, so nothing calls Slack.
"""

import json
import os
import urllib.request

from slack_bolt import App
from slack_bolt.adapter.aws_lambda import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult


def authorize(enterprise_id, team_id, logger):
    return AuthorizeResult(
        enterprise_id=enterprise_id,
        team_id=team_id,
        bot_token="xoxb-bench",
        bot_id="B0BENCH",
        bot_user_id="U0BENCH",
    )


app = App(
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    authorize=authorize,
    process_before_response=True,
)


@app.command("/opkit")
def ack_only(ack):
    ack("Working on it")


handler = SlackRequestHandler(app)


class Context:
    def __init__(self, request_id, arn):
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")


def main():
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
    while True:
        with urllib.request.urlopen(api + "/invocation/next") as r:
            request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
            arn = r.headers["Lambda-Runtime-Invoked-Function-Arn"]
            event = json.loads(r.read())
        answer = handler.handle(event, Context(request_id, arn))
        body = json.dumps(answer).encode()
        post = urllib.request.Request(
            api + "/invocation/" + request_id + "/response", data=body, method="POST"
        )
        urllib.request.urlopen(post).read()


main()
