//! SQS queues: how deep they are, whether their dead letters pile up, and (for
//! the trusted) a look at a few messages.
//!
//! ```text
//! sqs list [<prefix>]      queues with visible / in-flight / delayed counts
//! sqs depth <queue>        one queue: counts, age of the oldest message, its DLQ
//! sqs peek <queue>         role-guarded: up to 5 messages, left on the queue
//! ```
//!
//! `<queue>` is a queue name or URL. The oldest message's age comes from
//! CloudWatch (`AWS/SQS ApproximateAgeOfOldestMessage`) when the pack is given a
//! CloudWatch client ([`SqsOptions::with_cloudwatch`], feature `cloudwatch`).
//! There is no purge: deleting messages from chat is one typo from an outage.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::DateTime;

use super::format::{self, Table, code_block, sdk_error};
use super::targets::{Accounts, Located, Site, Targeted};
use opkit::access::Access;
use opkit::engine::command::{Command, CommandError, Ctx, Script};
use opkit::slack::Reply;
use opkit::slack::{Code, Mrkdwn, UserText};
use opkit::text::Token;
use opkit::timespec::format_time;

/// Most messages `sqs peek` shows.
pub const PEEK_MAX: i32 = 5;
/// Characters of a message body `sqs peek` shows.
const BODY_MAX: usize = 300;

/// How the SQS pack works in one deployment.
#[derive(Debug, Clone)]
pub struct SqsOptions {
    /// Who may `sqs peek` (default: `ops` or `admin`).
    pub peek: Access,
    /// Opkit's own jobs queue (`OPKIT_QUEUE_URL`): it and its dead-letter queue are
    /// never peeked at, since their messages are job envelopes holding `response_url`s.
    own_queue: Option<String>,
    #[cfg(feature = "cloudwatch")]
    cloudwatch: Option<aws_sdk_cloudwatch::Client>,
    /// The accounts `in <account>` may name (default: none, the bot's own).
    pub accounts: Arc<Accounts>,
}

impl Default for SqsOptions {
    fn default() -> Self {
        Self {
            peek: Access::parse(&[&["ops"], &["admin"]]).expect("valid role names"),
            own_queue: None,
            accounts: Arc::default(),
            #[cfg(feature = "cloudwatch")]
            cloudwatch: None,
        }
    }
}

impl SqsOptions {
    /// Never peeks at `jobs_queue_url` (Opkit's own jobs queue) or its dead-letter
    /// queue.
    pub fn protecting(mut self, jobs_queue_url: Option<String>) -> Self {
        self.own_queue = jobs_queue_url;
        self
    }

    /// Reads the oldest message's age from CloudWatch with `client`.
    #[cfg(feature = "cloudwatch")]
    pub fn with_cloudwatch(mut self, client: aws_sdk_cloudwatch::Client) -> Self {
        self.cloudwatch = Some(client);
        self
    }
}

/// The pack as one command sees it: its clients aimed at the account and region
/// the command looks at ([`Targeted`]), and how replies name them.
struct Pack {
    client: Client,
    site: Site,
    own_queue: Option<String>,
    #[cfg(feature = "cloudwatch")]
    cloudwatch: Option<aws_sdk_cloudwatch::Client>,
}

impl Located for Pack {
    fn location(&self) -> &str {
        &self.site.label
    }
}

/// The SQS script (stateless): `client` (and the CloudWatch client, if given)
/// as configured for the deployment, aimed by each command at the account and
/// region it names ([`SqsOptions::accounts`]).
pub fn script(client: Client, opts: SqsOptions) -> Script<()> {
    let peek_access = opts.peek.clone();
    let pack = Targeted::new(opts.accounts.clone(), move |place| {
        let (client, site) = place.bind(&client);
        Pack {
            client,
            site,
            own_queue: opts.own_queue.clone(),
            #[cfg(feature = "cloudwatch")]
            cloudwatch: opts.cloudwatch.as_ref().map(|cw| place.bind(cw).0),
        }
    });
    let (p1, p2, p3) = (pack.clone(), pack.clone(), pack);
    Script::new("sqs")
        .command(
            Command::new("sqs list")
                .alias("sqs")
                .usage("[<prefix>]")
                .describe("SQS queues with visible, in-flight and delayed messages")
                .example("sqs list orders")
                .example("sqs list orders in eu-west-1")
                .handler(move |ctx| p1.clone().run(ctx, "sqs list", |c, p| Box::pin(list(c, p)))),
        )
        .command(
            Command::new("sqs depth")
                .usage("<queue>")
                .example("sqs depth orders-dlq")
                .describe(
                    "One SQS queue: its messages, the oldest one's age, its dead-letter queue",
                )
                .handler(move |ctx| {
                    p2.clone()
                        .run(ctx, "sqs depth", |c, p| Box::pin(depth(c, p)))
                }),
        )
        .command(
            Command::new("sqs peek")
                .usage("<queue>")
                .describe("Look at up to 5 messages of an SQS queue, leaving them on it")
                .example("sqs peek orders-dlq")
                .access(peek_access)
                .handler(move |ctx| p3.clone().run(ctx, "sqs peek", |c, p| Box::pin(peek(c, p)))),
        )
}

/// A queue's counts, from GetQueueAttributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Depth {
    /// ApproximateNumberOfMessages.
    pub visible: u64,
    /// ApproximateNumberOfMessagesNotVisible.
    pub in_flight: u64,
    /// ApproximateNumberOfMessagesDelayed.
    pub delayed: u64,
    /// The RedrivePolicy's dead-letter queue ARN, if any.
    pub dlq_arn: Option<String>,
    /// The RedrivePolicy's maxReceiveCount, if any.
    pub max_receive: Option<u64>,
}

impl Depth {
    /// Reads the attributes GetQueueAttributes returned.
    pub fn from_attributes(attrs: &HashMap<QueueAttributeName, String>) -> Self {
        let n =
            |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
        let redrive = attrs
            .get(&QueueAttributeName::RedrivePolicy)
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
        let dlq_arn = redrive
            .as_ref()
            .and_then(|r| r.get("deadLetterTargetArn")?.as_str().map(str::to_string));
        let max_receive = redrive.as_ref().and_then(|r| {
            let v = r.get("maxReceiveCount")?;
            v.as_u64().or_else(|| v.as_str()?.parse().ok())
        });
        Self {
            visible: n(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: n(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
            dlq_arn,
            max_receive,
        }
    }
}

/// A queue's name from its URL or ARN (the last path or colon segment).
pub fn queue_name(url_or_arn: &str) -> &str {
    url_or_arn.rsplit(['/', ':']).next().unwrap_or(url_or_arn)
}

/// Whether `name` is a valid queue name: 1–80 letters, digits, `-`, `_`, with
/// an optional `.fifo`.
pub fn is_queue_name(name: &str) -> bool {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    !base.is_empty()
        && name.len() <= 80
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The queue the user named: a name, a URL, or a Slack link to a URL.
enum QueueRef {
    Name(String),
    Url(String),
}

fn queue_arg(ctx: &Ctx<()>) -> Result<QueueRef, CommandError> {
    if ctx.args.len() != 1 {
        return Err(CommandError::usage("give one queue name or URL"));
    }
    let text = match ctx.args.get(0) {
        Some(Token::Link { url, .. }) => url.clone(),
        _ => ctx.args.word(0, "a queue name or URL")?.to_string(),
    };
    if text.starts_with("https://") || text.starts_with("http://") {
        if !is_queue_name(queue_name(&text)) {
            return Err(CommandError::usage(crate::packs::aws::format::plain(
                format!("`{text}` is not a queue URL"),
            )));
        }
        return Ok(QueueRef::Url(text));
    }
    if !is_queue_name(&text) {
        return Err(CommandError::usage(crate::packs::aws::format::plain(
            format!(
                "`{}` is not a queue name: 1–80 letters, digits, `-` or `_`, optionally ending in `.fifo`",
                format::clip(&text, 90)
            ),
        )));
    }
    Ok(QueueRef::Name(text))
}

impl Pack {
    async fn url(&self, queue: &QueueRef) -> Result<(String, String), CommandError> {
        match queue {
            QueueRef::Url(url) => Ok((queue_name(url).to_string(), url.clone())),
            QueueRef::Name(name) => {
                let url = self.url_of(name, None).await?.ok_or_else(|| {
                    CommandError::user(crate::packs::aws::format::plain(format!(
                        "No queue named *{name}* in {}.",
                        self.site.label
                    )))
                })?;
                Ok((name.clone(), url))
            }
        }
    }

    /// The URL of queue `name` (in `account`, if given); `None` if there is none.
    async fn url_of(
        &self,
        name: &str,
        account: Option<&str>,
    ) -> Result<Option<String>, CommandError> {
        match self
            .client
            .get_queue_url()
            .queue_name(name)
            .set_queue_owner_aws_account_id(account.map(str::to_string))
            .send()
            .await
        {
            Ok(out) => Ok(out.queue_url().map(str::to_string)),
            Err(e) if format::AwsFailure::from_sdk(&e).kind == format::FailureKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(sdk_error(&e, "SQS", "find the queue", &self.site.label)),
        }
    }

    async fn depth(&self, url: &str) -> Result<Depth, CommandError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| {
                let failure = format::AwsFailure::from_sdk(&e);
                if failure.kind == format::FailureKind::NotFound {
                    CommandError::user(crate::packs::aws::format::plain(format!(
                        "No queue *{}* in {}.",
                        queue_name(url),
                        self.site.label
                    )))
                } else {
                    failure.to_user("SQS", "read the queue's attributes", &self.site.label)
                }
            })?;
        Ok(Depth::from_attributes(
            out.attributes().unwrap_or(&HashMap::new()),
        ))
    }

    /// The oldest message's age in seconds, from CloudWatch's latest datapoint in
    /// the last 15 minutes. `Err` holds why it is not known.
    #[cfg(feature = "cloudwatch")]
    async fn oldest_age(&self, name: &str) -> Option<Result<f64, String>> {
        use aws_sdk_cloudwatch::primitives::DateTime as SmithyTime;
        use aws_sdk_cloudwatch::types::{Dimension, Statistic};
        let cw = self.cloudwatch.as_ref()?;
        let now = chrono::Utc::now().timestamp();
        let out = cw
            .get_metric_statistics()
            .namespace("AWS/SQS")
            .metric_name("ApproximateAgeOfOldestMessage")
            .dimensions(Dimension::builder().name("QueueName").value(name).build())
            .start_time(SmithyTime::from_secs(now - 15 * 60))
            // A minute ahead, so a datapoint of the current minute is included.
            .end_time(SmithyTime::from_secs(now + 60))
            .period(60)
            .statistics(Statistic::Maximum)
            .send()
            .await;
        Some(match out {
            Ok(out) => out
                .datapoints()
                .iter()
                .filter_map(|d| Some((d.timestamp()?.secs(), d.maximum()?)))
                .max_by_key(|(t, _)| *t)
                .map(|(_, v)| v)
                .ok_or_else(|| "no CloudWatch data in the last 15m".to_string()),
            Err(e) => {
                let failure = format::AwsFailure::from_sdk(&e);
                tracing::warn!(detail = %failure.detail, "CloudWatch: could not read the queue's age");
                Err("CloudWatch did not answer".to_string())
            }
        })
    }

    #[cfg(not(feature = "cloudwatch"))]
    async fn oldest_age(&self, _name: &str) -> Option<Result<f64, String>> {
        None
    }
}

async fn list(ctx: &mut Ctx<()>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    let prefix = match ctx.args.len() {
        0 => None,
        1 => Some(ctx.args.word(0, "a name prefix")?.to_string()),
        _ => return Err(CommandError::usage("give at most one name prefix")),
    };
    if prefix.as_deref().is_some_and(|p| !is_queue_name(p)) {
        return Err(CommandError::usage(
            "a prefix is part of a queue name: letters, digits, `-` or `_`",
        ));
    }
    let mut pages = pack
        .client
        .list_queues()
        .set_queue_name_prefix(prefix.clone())
        .max_results(1000)
        .into_paginator()
        .send();
    let mut urls = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(&e, "SQS", "list queues", &pack.site.label))?;
        urls.extend(page.queue_urls().iter().cloned());
    }
    urls.sort_by(|a, b| queue_name(a).cmp(queue_name(b)));
    let which = prefix
        .as_ref()
        .map_or(String::new(), |p| format!(" starting with `{p}`"));
    if urls.is_empty() {
        return Ok(format::reply(
            format::plain(format!("No SQS queues{which} in {}.", pack.site.label)),
            "",
        ));
    }
    let total = urls.len();
    let (shown, more) = format::truncate(urls, format::MAX_ROWS);
    let mut table = Table::new(&["Queue", "Visible", "In flight", "Delayed", "DLQ"]);
    for url in &shown {
        // A queue deleted between the listing and this look is shown as such.
        let row = match pack.depth(url).await {
            Ok(d) => vec![
                queue_name(url).to_string(),
                d.visible.to_string(),
                d.in_flight.to_string(),
                d.delayed.to_string(),
                d.dlq_arn.as_deref().map_or("-", queue_name).to_string(),
            ],
            Err(CommandError::User(_)) => vec![queue_name(url).to_string(), "gone".into()],
            Err(e) => return Err(e),
        };
        table.row(row);
    }
    let mut body = format::code_block(&table.render());
    if let Some(note) = format::and_more(more) {
        body.push("\n");
        body.push(note);
    }
    Ok(format::reply(
        format::plain(format!(
            "{total} SQS queue{}{which} in {}:",
            if total == 1 { "" } else { "s" },
            pack.site.label
        )),
        body,
    ))
}

async fn depth(ctx: &mut Ctx<()>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    let queue = queue_arg(ctx)?;
    let (name, url) = pack.url(&queue).await?;
    let d = pack.depth(&url).await?;
    let summary = format!(
        "*{name}* in {}: {} visible, {} in flight, {} delayed",
        pack.site.label, d.visible, d.in_flight, d.delayed
    );
    let mut lines = Vec::new();
    match pack.oldest_age(&name).await {
        Some(Ok(secs)) => lines.push(format!(
            "oldest message: {} old (CloudWatch, last 15m)",
            opkit::timespec::format_duration(chrono::Duration::seconds(secs as i64))
        )),
        Some(Err(why)) => lines.push(format!("oldest message: unknown ({why})")),
        None => {}
    }
    lines.push(match &d.dlq_arn {
        None => "no dead-letter queue".to_string(),
        Some(arn) => dlq_line(&pack, arn, d.max_receive).await?,
    });
    Ok(format::reply(
        format::plain(summary),
        format::plain_lines(lines),
    ))
}

async fn dlq_line(
    pack: &Pack,
    arn: &str,
    max_receive: Option<u64>,
) -> Result<String, CommandError> {
    let dlq = queue_name(arn).to_string();
    let account = arn.split(':').nth(4).filter(|a| !a.is_empty());
    let after = max_receive.map_or(String::new(), |n| format!(", after {n} receives"));
    let Some(url) = pack.url_of(&dlq, account).await? else {
        return Ok(format!(
            "dead-letter queue *{dlq}*{after}: not found in {} :warning:",
            pack.site.label
        ));
    };
    let dd = pack.depth(&url).await?;
    let total = dd.visible + dd.in_flight + dd.delayed;
    Ok(if total == 0 {
        format!("dead-letter queue *{dlq}*{after}: empty")
    } else {
        format!(
            ":warning: dead-letter queue *{dlq}*{after}: {total} message{} ({} visible)",
            if total == 1 { "" } else { "s" },
            dd.visible
        )
    })
}

async fn peek(ctx: &mut Ctx<()>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    let queue = queue_arg(ctx)?;
    let (name, url) = pack.url(&queue).await?;
    if let Some(own) = &pack.own_queue {
        let own_dlq = pack.depth(own).await?.dlq_arn;
        if name == queue_name(own) || own_dlq.as_deref().map(queue_name) == Some(name.as_str()) {
            return Err(CommandError::user(crate::packs::aws::format::plain(
                format!(
                    "I do not peek at *{name}*: it is my own job queue, and its messages hold \
                 the addresses my answers go to. `sqs depth {name}` shows its counts."
                ),
            )));
        }
    }
    let d = pack.depth(&url).await?;
    if let Some(arn) = &d.dlq_arn {
        // Every receive counts toward maxReceiveCount: peeking could push
        // messages into the dead-letter queue.
        return Err(CommandError::user(crate::packs::aws::format::plain(
            format!(
                "I do not peek at *{name}*: it has a dead-letter queue (*{}*), and each look counts as \
             a receive, which could move messages there. `sqs depth {name}` shows its counts; \
             peeking at the dead-letter queue itself is fine.",
                queue_name(arn)
            ),
        )));
    }
    let out = pack
        .client
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(PEEK_MAX)
        .visibility_timeout(0)
        .wait_time_seconds(0)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| sdk_error(&e, "SQS", "receive messages", &pack.site.label))?;
    let messages = out.messages();
    if messages.is_empty() {
        return Ok(format::reply(
            format::plain(format!(
                "No messages to show in *{name}* in {} ({} visible, {} in flight).",
                pack.site.label, d.visible, d.in_flight
            )),
            "",
        ));
    }
    let mut parts = Vec::new();
    for m in messages {
        let attr = |k: MessageSystemAttributeName| m.attributes().and_then(|a| a.get(&k)).cloned();
        let sent = attr(MessageSystemAttributeName::SentTimestamp)
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis)
            .map_or_else(|| Mrkdwn::from("unknown"), format_time);
        let received =
            attr(MessageSystemAttributeName::ApproximateReceiveCount).unwrap_or_else(|| "?".into());
        parts.push(opkit::mrkdwn!(
            "{} sent {}, received {} time(s)\n{}",
            Code::new(m.message_id().unwrap_or("?")),
            sent,
            UserText::new(received),
            code_block(&format::clip(m.body().unwrap_or_default(), BODY_MAX))
        ));
    }
    Ok(format::reply(
        format::plain(format!(
            "{} message{} from *{name}* in {} (left on the queue; {} visible in all):",
            messages.len(),
            if messages.len() == 1 { "" } else { "s" },
            pack.site.label,
            d.visible
        )),
        Mrkdwn::join(parts, "\n"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_come_from_urls_and_arns() {
        assert_eq!(
            queue_name("https://sqs.us-east-1.amazonaws.com/123456789012/jobs"),
            "jobs"
        );
        assert_eq!(
            queue_name("arn:aws:sqs:us-east-1:123456789012:jobs-dlq"),
            "jobs-dlq"
        );
        assert!(is_queue_name("jobs_1-a.fifo"));
        assert!(!is_queue_name(".fifo"));
        assert!(!is_queue_name("a/b"));
        assert!(!is_queue_name(&"x".repeat(81)));
    }

    #[test]
    fn attributes_give_counts_and_the_redrive_target() {
        let attrs: HashMap<QueueAttributeName, String> = [
            (QueueAttributeName::ApproximateNumberOfMessages, "12"),
            (QueueAttributeName::ApproximateNumberOfMessagesNotVisible, "3"),
            (
                QueueAttributeName::RedrivePolicy,
                r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:jobs-dlq","maxReceiveCount":"4"}"#,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        let d = Depth::from_attributes(&attrs);
        assert_eq!((d.visible, d.in_flight, d.delayed), (12, 3, 0));
        assert_eq!(
            d.dlq_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:1:jobs-dlq")
        );
        assert_eq!(d.max_receive, Some(4));
        assert_eq!(Depth::from_attributes(&HashMap::new()), Depth::default());
    }
}
