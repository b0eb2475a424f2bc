// bolt-js's AwsLambdaReceiver as a cold Lambda runtime, for opkit-bench.
//
// The same verify-and-ack as Opkit's ingress, without the enqueue: an App on
// AwsLambdaReceiver with a listener that only acks. It polls the Lambda Runtime API
// named by AWS_LAMBDA_RUNTIME_API (the 2018-06-01 interface), as Lambda's own Node.js
// runtime does, and answers each invocation with the receiver's API Gateway response.
// Authorization is a local function, so nothing calls Slack.
'use strict';

const { App, AwsLambdaReceiver, LogLevel } = require('@slack/bolt');

const receiver = new AwsLambdaReceiver({
  signingSecret: process.env.SLACK_SIGNING_SECRET,
  logLevel: LogLevel.ERROR,
});
const app = new App({
  receiver,
  authorize: async () => ({ botToken: 'xoxb-bench', botId: 'B0BENCH', botUserId: 'U0BENCH' }),
  logLevel: LogLevel.ERROR,
});
app.command('/opkit', async ({ ack }) => {
  await ack('Working on it');
});

async function main() {
  const handler = await receiver.start();
  const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;
  for (;;) {
    const next = await fetch(`${api}/invocation/next`);
    const requestId = next.headers.get('lambda-runtime-aws-request-id');
    const event = await next.json();
    const context = { awsRequestId: requestId, functionName: process.env.AWS_LAMBDA_FUNCTION_NAME };
    const answer = await handler(event, context, () => {});
    await fetch(`${api}/invocation/${requestId}/response`, {
      method: 'POST',
      body: JSON.stringify(answer),
    });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
