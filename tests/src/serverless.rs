//! The deployed path assembled in one test: the real ingress and worker handlers,
//! the real SDK clients against the emulator's SQS and DynamoDB, a fake Slack,
//! and a manual clock.
//!
//! ```text
//! signed request ──> opkit_ingress::handle (API Gateway v2 event, base64 body)
//!                      └─ SendMessage ──> emulator SQS
//! ReceiveMessage ──> SqsEvent ──> opkit_worker::handle ──> emulator DynamoDB
//!                                   └─ reply ──> FakeSlack response_url
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::retry::RetryConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use opkit::clock::{Clock, ManualClock};
use opkit::config::Config;
use opkit::engine::bot::{Bot, BotBuilder};
use opkit::expiry::Expiry;
use opkit::ingress::Ingress;
use opkit::job::QueueMessage;
use opkit::slack::{HttpPoster, RetryPolicy, SigningSecret};
use opkit::sqs::{Queues, SqsQueue, create_queues};
use opkit::store::Store;
use opkit::store::dynamodb::{DynamoStore, create_table};
use opkit::worker::{JobRunner, Worker};
use serde_json::{Value, json};

use crate::aws::{emulator_endpoint, sdk_config, sdk_config_at, unique_name};
use crate::fake_slack::FakeSlack;
use crate::slack_request::{TEAM_ID, signed_headers};

/// The signing secret every stack is configured with.
pub const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// The bootstrap admin.
pub const ADMIN: &str = "UADMIN";
/// The key every stack seals job envelopes with (`OPKIT_ENVELOPE_KEY`).
pub const ENVELOPE_KEY: &str = "stack-envelope-key-0123456789abcdef";

/// One isolated deployment: its own table and queues, a fake Slack, a clock.
pub struct Stack {
    /// The fake Slack (response URLs and Web API).
    pub slack: FakeSlack,
    /// The clock every part reads.
    pub clock: ManualClock,
    /// The DynamoDB persister on the stack's table.
    pub store: Arc<DynamoStore>,
    /// The jobs queue and its DLQ.
    pub queues: Queues,
    /// The SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// The ingress, as the ingress Lambda builds it.
    pub ingress: Ingress,
    /// The job runner, as the worker Lambda builds it.
    pub runner: JobRunner,
    /// The bot the worker runs.
    pub bot: Bot,
    /// The configuration.
    pub config: Config,
}

impl Stack {
    /// Creates the table and queues on the emulator and wires everything up.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// [`Stack::start`] with extra (or overriding) settings.
    pub async fn start_with(extra: &[(&str, &str)]) -> Self {
        let mut builder = Self::builder();
        for (name, value) in extra {
            builder = builder.env(name, value);
        }
        builder.start().await
    }

    /// A stack with more say over its parts: settings, a wrapper around the store
    /// the bot and the worker use (fault injection, counting), and the endpoint
    /// their AWS clients call (a fault proxy in front of the emulator).
    pub fn builder() -> StackBuilder {
        StackBuilder::default()
    }
}

/// Wraps the stack's DynamoDB store before the bot and the worker get it.
type WrapStore = Box<dyn FnOnce(Arc<DynamoStore>) -> Arc<dyn Store> + Send>;

/// Adds to the bot before it is built (a test's own script).
type AddToBot = Box<dyn FnOnce(BotBuilder) -> BotBuilder + Send>;

/// Builds a [`Stack`]; see [`Stack::builder`].
#[derive(Default)]
pub struct StackBuilder {
    extra: Vec<(String, String)>,
    wrap: Option<WrapStore>,
    add: Option<AddToBot>,
    endpoint: Option<String>,
    retry: Option<RetryConfig>,
    images: Option<Arc<dyn catbot::packs::aws::cloudwatch::MetricImages>>,
}

impl StackBuilder {
    /// Sets (or overrides) one setting.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_string(), value.to_string()));
        self
    }

    /// The bot, the worker's claims and the expiry pass use `wrap(store)`;
    /// [`Stack::store`] stays the plain store, for looking at what was written.
    pub fn store(
        mut self,
        wrap: impl FnOnce(Arc<DynamoStore>) -> Arc<dyn Store> + Send + 'static,
    ) -> Self {
        self.wrap = Some(Box::new(wrap));
        self
    }

    /// `graph` draws with `images` (moto has no GetMetricWidgetImage: a
    /// [`FakeImages`](crate::aws_packs::FakeImages)); the rest of the AWS packs are
    /// as deployed.
    pub fn graph_images(
        mut self,
        images: Arc<dyn catbot::packs::aws::cloudwatch::MetricImages>,
    ) -> Self {
        self.images = Some(images);
        self
    }

    /// Adds to the bot (e.g. a script of the test's own) before it is built.
    pub fn bot(mut self, add: impl FnOnce(BotBuilder) -> BotBuilder + Send + 'static) -> Self {
        self.add = Some(Box::new(add));
        self
    }

    /// The AWS clients of the bot and the worker (DynamoDB, EC2, SQS commands) call
    /// `url` instead of the emulator: a [`FaultProxy`](crate::fault_proxy::FaultProxy).
    /// The ingress, [`Stack::drain`] and [`Stack::store`] still go straight to it.
    pub fn aws_endpoint(mut self, url: String) -> Self {
        self.endpoint = Some(url);
        self
    }

    /// The retry strategy of the bot's and the worker's AWS clients (default: the
    /// SDK's, as deployed).
    pub fn aws_retries(mut self, retry: RetryConfig) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Creates the table and queues on the emulator and wires everything up.
    pub async fn start(self) -> Stack {
        let sdk = sdk_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let table = unique_name("opkit");
        create_table(&dynamo, &table).await.expect("create table");
        let queues = create_queues(&sqs, &unique_name("jobs"))
            .await
            .expect("create queues");
        let slack = FakeSlack::start().await;
        let api_url = slack.api_url();
        let mut vars = vec![
            ("SLACK_SIGNING_SECRET", SECRET),
            ("SLACK_BOT_TOKEN", "xoxb-test"),
            ("SLACK_API_URL", api_url.as_str()),
            ("OPKIT_ADMINS", ADMIN),
            ("OPKIT_TEAM_IDS", TEAM_ID),
            ("OPKIT_TABLE", table.as_str()),
            ("OPKIT_QUEUE_URL", queues.url.as_str()),
            ("OPKIT_ENVELOPE_KEY", ENVELOPE_KEY),
        ];
        vars.extend(self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // As deployed: each credential in a Secrets Manager secret (on the emulator),
        // the environment naming it (`NAME_ARN`), resolved as the Lambdas resolve them.
        let (config, settings) = resolve_through_secrets_manager(&sdk, &vars).await;
        let clock = ManualClock::new(Utc::now());
        let shared_clock = Arc::new(clock.clone());
        let store = Arc::new(DynamoStore::new(
            dynamo,
            table.clone(),
            shared_clock.clone(),
        ));
        // The bot's and the worker's own AWS clients: the emulator, or a proxy in front.
        let own_clients = self.endpoint.is_some() || self.retry.is_some();
        let bot_sdk = if own_clients {
            let endpoint = self.endpoint.clone().unwrap_or_else(emulator_endpoint);
            sdk_config_at(&endpoint, self.retry).await
        } else {
            sdk.clone()
        };
        let bot_store: Arc<DynamoStore> = if own_clients {
            Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&bot_sdk),
                table,
                shared_clock.clone(),
            ))
        } else {
            store.clone()
        };
        let bot_store: Arc<dyn Store> = match self.wrap {
            Some(wrap) => wrap(bot_store),
            None => bot_store,
        };
        // As the worker Lambda builds it: Catbot with the AWS packs on the emulator.
        let http = reqwest::Client::new();
        let mut aws_packs = catbot::aws_packs_config(&config, &settings, &bot_sdk, http.clone());
        aws_packs.images = self.images.clone();
        let builder = catbot::with_aws_packs(
            catbot::builder(&config, &settings, bot_store.clone()),
            &bot_sdk,
            &aws_packs,
        );
        let builder = match self.add {
            Some(add) => add(builder),
            None => builder,
        };
        let bot = builder
            .clock(shared_clock.clone())
            .build()
            .expect("build the bot");
        let key = config.require_envelope_key().expect("a key").clone();
        let queue = Arc::new(SqsQueue::new(sqs.clone(), queues.url.clone(), key.clone()));
        // As the ingress Lambda builds it (which requires OPKIT_TEAM_IDS).
        let ingress = opkit_ingress::ingress(&config, shared_clock, queue).expect("ingress");
        let poster = HttpPoster::new(http.clone()).with_retry_policy(fast_retries());
        let channels = catbot::channel_poster(&config, http);
        let worker = Worker::new(bot.clone(), Arc::new(poster), channels);
        let runner = JobRunner::new(Arc::new(worker), bot_store, key);
        Stack {
            slack,
            clock,
            store,
            queues,
            sqs,
            ingress,
            runner,
            bot,
            config,
        }
    }
}

impl Stack {
    /// Now, by the stack's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// An API Gateway HTTP API (payload v2) event for a signed POST, the body
    /// base64-encoded as API Gateway does for form bodies.
    pub fn signed_event(&self, path: &str, body: &str) -> lambda_http::Request {
        let headers = signed_headers(
            &SigningSecret::new(SECRET),
            self.now().timestamp(),
            body.as_bytes(),
        );
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        apigw_v2_event(path, body.as_bytes(), &headers, true)
    }

    /// Sends a request through the ingress handler; returns status and body.
    pub async fn ingress(&self, request: lambda_http::Request) -> (u16, String) {
        let response = opkit_ingress::handle(&self.ingress, request).await;
        let status = response.status().as_u16();
        let body = String::from_utf8(response.body().to_vec()).expect("utf-8 answer");
        (status, body)
    }

    /// Takes every message now on the jobs queue (without deleting them).
    pub async fn drain(&self) -> Vec<QueueMessage> {
        let mut all = Vec::new();
        loop {
            let batch = opkit::sqs::receive(&self.sqs, &self.queues.url, 10, 0)
                .await
                .expect("receive");
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    /// Feeds messages to the worker handler as one SQS event, in an invocation
    /// with the worker's whole timeout ahead of it.
    pub async fn work(&self, messages: &[QueueMessage]) -> SqsBatchResponse {
        let timeout = chrono::Duration::seconds(i64::from(opkit::timing::WORKER_TIMEOUT_SECS));
        self.work_until(messages, self.now() + timeout).await
    }

    /// Feeds messages to the worker handler as one SQS event, in an invocation
    /// whose deadline is `deadline` (by the stack's clock).
    pub async fn work_until(
        &self,
        messages: &[QueueMessage],
        deadline: DateTime<Utc>,
    ) -> SqsBatchResponse {
        opkit_worker::handle(&self.runner, sqs_event(messages), deadline).await
    }

    /// Puts a raw body on the jobs queue, as any principal allowed to send could.
    pub async fn send_raw(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.queues.url)
            .message_body(body)
            .send()
            .await
            .expect("send a message");
    }

    /// Queues `/opkit {text}` by `user` through the ingress (its reply goes to the
    /// fake Slack's `response_url` named `reply_to`); returns its one SQS message.
    pub async fn queue_command(&self, user: &str, text: &str, reply_to: &str) -> QueueMessage {
        let body = crate::slash_command_body(user, text, &self.slack.response_url(reply_to));
        let (status, ack) = self
            .ingress(self.signed_event("/slack/commands", &body))
            .await;
        assert_eq!(status, 200, "{ack}");
        let mut messages = self.drain().await;
        assert_eq!(messages.len(), 1);
        messages.remove(0)
    }

    /// Runs `/opkit {text}` by `user` through the ingress and the worker, and
    /// returns the answer posted to its `response_url` (skipping the Web API
    /// lookups the command made on the way: `users.info`, `usergroups.users.list`).
    ///
    /// # Panics
    /// If the ingress refuses it, the worker reports a failure, or no answer
    /// arrives within 10 s.
    pub async fn run(&self, user: &str, text: &str) -> Value {
        const LOOKUPS: [&str; 2] = ["/api/users.info", "/api/usergroups.users.list"];
        let wait = std::time::Duration::from_secs(10);
        let before = self.slack.requests().len();
        let message = self.queue_command(user, text, "r").await;
        let response = self.work(&[message]).await;
        assert!(response.batch_item_failures.is_empty(), "`{text}` failed");
        let mut expected = before + 1;
        loop {
            let requests = self.slack.wait_for(expected, wait).await;
            if let Some(answer) = requests[before..]
                .iter()
                .find(|r| !LOOKUPS.contains(&r.path.as_str()))
            {
                return answer.json().clone();
            }
            expected = requests.len() + 1;
        }
    }

    /// [`Stack::run`], the answer's text.
    pub async fn text(&self, user: &str, text: &str) -> String {
        let answer = self.run(user, text).await;
        answer["text"]
            .as_str()
            .unwrap_or_else(|| panic!("an answer without text: {answer}"))
            .to_owned()
    }

    /// The key this stack's job envelopes are sealed with.
    pub fn envelope_key(&self) -> opkit::job::EnvelopeKey {
        self.config
            .require_envelope_key()
            .expect("the stack has a key")
            .clone()
    }

    /// One expiry pass, as the expiry Lambda runs it (due scheduled commands go
    /// to the jobs queue).
    pub async fn expire(&self) -> opkit::expiry::ExpiryReport {
        self.try_expire().await.expect("expiry pass")
    }

    /// [`Stack::expire`], returning the pass's error instead of panicking.
    pub async fn try_expire(
        &self,
    ) -> Result<opkit::expiry::ExpiryReport, opkit::engine::CommandError> {
        let channels = catbot::channel_poster(&self.config, reqwest::Client::new());
        let key = self.config.require_envelope_key().expect("a key").clone();
        let queue = Arc::new(SqsQueue::new(
            self.sqs.clone(),
            self.queues.url.clone(),
            key,
        ));
        Expiry::new(self.bot.clone(), channels)
            .with_queue(queue)
            .run_once()
            .await
    }
}

/// A retry policy with millisecond delays, so fault tests stay fast.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: std::time::Duration::from_millis(5),
        max_delay: std::time::Duration::from_millis(20),
    }
}

/// Opkit's and Catbot's configuration from `vars` the way the Lambdas read theirs:
/// every credential among them is put in a secret of its own on the emulator's
/// Secrets Manager and replaced by `NAME_ARN`, then resolved with
/// [`opkit::secret::secrets_manager::resolve`]. Later entries of `vars` win.
pub async fn resolve_through_secrets_manager(
    sdk: &aws_config::SdkConfig,
    vars: &[(&str, &str)],
) -> (Config, catbot::Settings) {
    let mut env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let credentials: Vec<&'static str> = opkit::config::SECRET_SETTINGS
        .into_iter()
        .chain(catbot::settings::SECRET_SETTINGS)
        .collect();
    for name in &credentials {
        if let Some(value) = env.remove(*name) {
            let arn = create_secret(&secrets, name, &value).await;
            env.insert(format!("{name}_ARN"), arn);
        }
    }
    let resolved = opkit::secret::secrets_manager::resolve(
        &secrets,
        |k: &str| env.get(k).cloned(),
        &credentials,
    )
    .await
    .expect("the stack's secrets resolve");
    let config = Config::from_lookup(|k| resolved.get(k)).expect("valid test configuration");
    let settings = catbot::Settings::from_lookup(|k| resolved.get(k)).expect("valid settings");
    (config, settings)
}

/// Creates a secret named after `setting` (and unique) holding `value`; its ARN.
pub async fn create_secret(
    client: &aws_sdk_secretsmanager::Client,
    setting: &str,
    value: &str,
) -> String {
    client
        .create_secret()
        .name(unique_name(&setting.to_ascii_lowercase().replace('_', "-")))
        .secret_string(value)
        .send()
        .await
        .expect("create a secret on the emulator")
        .arn
        .expect("a new secret has an ARN")
}

/// A configuration from literal settings.
pub fn config(vars: &[(&str, &str)]) -> Config {
    // Later entries win, so callers can override defaults.
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned()).expect("valid test configuration")
}

/// An API Gateway HTTP API (payload v2) event, as Lambda receives it.
pub fn apigw_v2_event(
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
    base64: bool,
) -> lambda_http::Request {
    let event = apigw_v2_event_json(path, body, headers, base64);
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

/// [`apigw_v2_event`] as the JSON document the Runtime API hands the function.
pub fn apigw_v2_event_json(
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
    base64: bool,
) -> Value {
    let mut all: HashMap<String, String> = HashMap::from([
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
        (
            "host".to_string(),
            "abc123.execute-api.us-east-1.amazonaws.com".to_string(),
        ),
    ]);
    all.extend(
        headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())),
    );
    let body = if base64 {
        BASE64.encode(body)
    } else {
        String::from_utf8(body.to_vec()).expect("a text body")
    };
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": all,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "Slackbot 1.0 (+https://api.slack.com/robots)"
            },
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:23:00:00 +0000",
            "timeEpoch": 1_795_000_000_000_i64
        },
        "body": body,
        "isBase64Encoded": base64
    })
}

/// An SQS event carrying `messages` of the jobs queue, as the Lambda event source
/// sends it.
pub fn sqs_event(messages: &[QueueMessage]) -> SqsEvent {
    sqs_event_from(messages, "arn:aws:sqs:us-east-1:123456789012:jobs")
}

/// An SQS event carrying `messages` of the queue `queue_arn` (its records'
/// `eventSourceARN`), as the Lambda event source sends it.
pub fn sqs_event_from(messages: &[QueueMessage], queue_arn: &str) -> SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.id,
                "receiptHandle": m.receipt,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": m.receive_count.to_string(),
                    "SentTimestamp": "1795000000000",
                    "SenderId": "AROAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1795000000000"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("a valid SQS event")
}
