//! CloudWatch: alarms, a health report, metric statistics and graphs.
//!
//! ```text
//! alarms [alarm|ok|insufficient_data|all]     alarms in a state (ALARM by default), newest change first
//! alarms prefix <prefix> [<state>]            alarms whose name starts with <prefix> (any state by default)
//! alarms watch <name> / alarms unwatch <name> keep a watchlist (in the script's state)
//! alarms watched                              the watchlist with each alarm's current state
//! health                                      alarm counts by state
//! metric <namespace> <metric> [<dim>=<value> …] [last 1h|1d|…] [stat avg|max|min|sum|count|p99]
//! graph <alarm name> [last …]                 the alarm's metric as a picture, posted to the channel
//! graph <namespace> <metric> [<dim>=<value> …] [last …] [stat …]
//! ```
//!
//! Listings follow pagination to the end. `metric` picks a period giving at most
//! twelve rows, and tells an unknown metric (with a "did you mean") from a known
//! one without datapoints. `graph` renders with GetMetricWidgetImage (behind the
//! [`MetricImages`] port) and uploads with Slack's external upload flow (behind
//! [`FileUploader`]).

mod alarms;
mod graph;
mod health;
mod metric;
mod tags;
mod watch;

use std::collections::{BTreeMap, BTreeSet};

use opkit::ids::UserId;
use std::sync::Arc;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue, Statistic};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::format::{self, sdk_error};
use super::targets::{Accounts, Located, Site, Targeted};
use opkit::BoxFuture;
use opkit::engine::command::{Args, Command, CommandError, Ctx, Script};
use opkit::mrkdwn;
use opkit::slack::web::FileUploader;
use opkit::slack::{Mrkdwn, Reply, UserText};
use opkit::timespec::format_duration;

pub use alarms::parse_state;
pub use graph::MetricImages;
pub use health::health_report;
pub use metric::{MetricQuery, Stat, format_value, render_points};
pub use watch::MAX_WATCHED;

/// Alarms a listing shows before "and N more" (a Slack section holds 3000
/// characters; ten alarms with their reasons fit).
const MAX_ALARMS: usize = 10;

/// The watchlist, kept in the script's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudWatchState {
    /// Watched alarm names.
    #[serde(default)]
    pub watched: BTreeSet<String>,
    /// Who watches each alarm (`alarms watch` as them): each gets a direct
    /// message when it changes state. The notifications' handler reads this field
    /// ([`crate::packs::notify::Notifier`]): keep its name and shape.
    #[serde(default)]
    pub watchers: BTreeMap<String, BTreeSet<UserId>>,
}

/// How the CloudWatch pack works in one deployment.
#[derive(Clone, Default)]
pub struct CloudWatchOptions {
    /// Draws graphs; `None`: the CloudWatch client itself (GetMetricWidgetImage).
    pub images: Option<Arc<dyn MetricImages>>,
    /// Posts graphs to Slack; `None`: `graph` explains that it needs the bot token.
    pub uploader: Option<Arc<dyn FileUploader>>,
    /// The accounts `in <account>` may name (default: none, the bot's own).
    pub accounts: Arc<Accounts>,
}

/// The pack as one command sees it: its client aimed at the account and region
/// the command looks at ([`Targeted`]), and how replies name them.
struct Pack {
    client: Client,
    site: Site,
    images: Arc<dyn MetricImages>,
    uploader: Option<Arc<dyn FileUploader>>,
}

impl Located for Pack {
    fn location(&self) -> &str {
        &self.site.label
    }
}

type Handler =
    fn(&mut Ctx<CloudWatchState>, Arc<Pack>) -> BoxFuture<'_, Result<Reply, CommandError>>;

/// The CloudWatch script: `client` as configured for the deployment, aimed by
/// each command at the account and region it names
/// ([`CloudWatchOptions::accounts`]).
pub fn script(client: Client, opts: CloudWatchOptions) -> Script<CloudWatchState> {
    let pack = Targeted::new(opts.accounts.clone(), move |place| {
        let (client, site) = place.bind(&client);
        let images = opts
            .images
            .clone()
            .unwrap_or_else(|| Arc::new(client.clone()) as Arc<dyn MetricImages>);
        Pack {
            client,
            site,
            images,
            uploader: opts.uploader.clone(),
        }
    });
    let command = |form: &'static str, usage: &str, text: &str, run: Handler| {
        let pack = pack.clone();
        Command::new(form)
            .usage(usage)
            .describe(text)
            .handler(move |ctx| pack.clone().run(ctx, form, run))
    };
    Script::new("cloudwatch")
        .command(command(
            "alarms",
            "[alarm|ok|insufficient_data|all]",
            "CloudWatch alarms in a state (ALARM by default), newest change first",
            |c, p| Box::pin(alarms::alarms(c, p)),
        )
        .example("alarms")
        .example("alarms all")
        .example("alarms in staging us-west-2"))
        .command(command(
            "alarms prefix",
            "<prefix> [<state>]",
            "CloudWatch alarms whose name starts with a prefix",
            |c, p| Box::pin(alarms::alarms_prefix(c, p)),
        )
        .example("alarms prefix api- alarm"))
        .command(command(
            "alarms watch",
            "<alarm name>",
            "Add an alarm to the watchlist",
            |c, p| Box::pin(watch::watch(c, p)),
        )
        .example("alarms watch api-5xx"))
        .command(command(
            "alarms unwatch",
            "<alarm name>",
            "Take an alarm off the watchlist",
            |c, p| Box::pin(watch::unwatch(c, p)),
        )
        .example("alarms unwatch api-5xx"))
        .command(command(
            "alarms watched",
            super::IN_ONLY,
            "The watchlist, with each alarm's current state",
            |c, p| Box::pin(watch::watched(c, p)),
        )
        .example("alarms watched"))
        .command(command(
            "health",
            super::IN_ONLY,
            "CloudWatch alarm counts by state, at a glance",
            |c, p| Box::pin(health::health(c, p)),
        )
        .example("health"))
        .command(command(
            "metric",
            "<namespace> <metric> [<dim>=<value> …] [last 1h|1d] [stat avg|max|min|sum|count|p99]",
            "A CloudWatch metric's statistics over a window, as a table",
            |c, p| Box::pin(metric::metric(c, p)),
        )
        .example("metric AWS/EC2 CPUUtilization InstanceId=i-0123456789abcdef0 last 1d stat max"))
        .command(command(
            "graph",
            "<alarm name> | <namespace> <metric> [<dim>=<value> …] [last …] [stat …]",
            "A CloudWatch metric or alarm as a picture, posted to the channel",
            |c, p| Box::pin(graph::graph(c, p)),
        )
        .example("graph api-5xx")
        .example("graph AWS/SQS ApproximateAgeOfOldestMessage QueueName=orders last 1d"))
}

/// An alarm as the listings show it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmView {
    /// Its name.
    pub name: String,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// Why it is in that state.
    pub reason: String,
    /// When its state last changed.
    pub since: Option<DateTime<Utc>>,
    /// What it watches: one metric, if it is a single-metric alarm.
    pub metric: Option<MetricQuery>,
    /// Its threshold, if it has one.
    pub threshold: Option<f64>,
    /// Whether it is a composite alarm.
    pub composite: bool,
}

impl AlarmView {
    /// Its line in a list. Names and reasons are AWS's text, shown as text;
    /// the time is the bot's own date token, markup (the finding F21: escaped
    /// with the rest, Slack showed the raw `<!date^…>`).
    fn line(&self, now: DateTime<Utc>) -> Mrkdwn {
        let since = self.since.map(|at| {
            let ago = UserText::new(format_duration(now - at));
            mrkdwn!(" since {} ({} ago)", at, ago)
        });
        let reason = (!self.reason.is_empty())
            .then(|| mrkdwn!("\n    {}", UserText::flat(&format::clip(&self.reason, 120))));
        mrkdwn!(
            "• *{}* — {}{}{}",
            UserText::flat(&self.name),
            UserText::flat(&self.state),
            since,
            reason
        )
    }
}

fn to_chrono(t: Option<&aws_sdk_cloudwatch::primitives::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

impl Pack {
    /// Every alarm matching the filters, following pagination to the end; both
    /// metric and composite alarms.
    async fn alarms(
        &self,
        state: Option<StateValue>,
        prefix: Option<&str>,
        names: Option<Vec<String>>,
    ) -> Result<Vec<AlarmView>, CommandError> {
        let mut pages = self
            .client
            .describe_alarms()
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .set_state_value(state.clone())
            .set_alarm_name_prefix(prefix.map(str::to_string))
            .set_alarm_names(names)
            .max_records(100)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| sdk_error(&e, "CloudWatch", "list alarms", &self.site.label))?;
            for a in page.metric_alarms() {
                let dims = a
                    .dimensions()
                    .iter()
                    .filter_map(|d| Some((d.name()?.to_string(), d.value()?.to_string())))
                    .collect();
                let stat = a
                    .extended_statistic()
                    .map(|p| Stat::Percentile(p.to_string()))
                    .or_else(|| a.statistic().map(|s| Stat::Standard(s.clone())));
                let metric = match (a.namespace(), a.metric_name()) {
                    (Some(ns), Some(m)) => Some(MetricQuery {
                        namespace: ns.to_string(),
                        metric: m.to_string(),
                        dims,
                        window: Duration::hours(3),
                        stat: stat.unwrap_or(Stat::Standard(Statistic::Average)),
                        window_given: false,
                    }),
                    _ => None,
                };
                out.push(AlarmView {
                    name: a.alarm_name().unwrap_or_default().to_string(),
                    state: a.state_value().map_or("?", |s| s.as_str()).to_string(),
                    reason: a.state_reason().unwrap_or_default().to_string(),
                    since: to_chrono(a.state_updated_timestamp()),
                    metric,
                    threshold: a.threshold(),
                    composite: false,
                });
            }
            for a in page.composite_alarms() {
                out.push(AlarmView {
                    name: a.alarm_name().unwrap_or_default().to_string(),
                    state: a.state_value().map_or("?", |s| s.as_str()).to_string(),
                    reason: a.state_reason().unwrap_or_default().to_string(),
                    since: to_chrono(a.state_updated_timestamp()),
                    metric: None,
                    threshold: None,
                    composite: true,
                });
            }
        }
        // The service filters; filtering again keeps the answer right whatever
        // combination of filters an endpoint honours.
        out.retain(|a| {
            state.as_ref().is_none_or(|s| a.state == s.as_str())
                && prefix.is_none_or(|p| a.name.starts_with(p))
        });
        out.sort_by(|a, b| b.since.cmp(&a.since).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    /// The alarm called `name`, if it exists.
    async fn alarm(&self, name: &str) -> Result<Option<AlarmView>, CommandError> {
        let found = self
            .alarms(None, None, Some(vec![name.to_string()]))
            .await?;
        Ok(found.into_iter().find(|a| a.name == name))
    }
}

fn one_name(args: &Args) -> Result<String, CommandError> {
    if args.len() != 1 {
        return Err(CommandError::usage(
            "give one alarm name (quote it if it has spaces)",
        ));
    }
    let name = args.word(0, "an alarm name")?.to_string();
    if name.chars().count() > 255 {
        return Err(CommandError::usage(
            "alarm names are at most 255 characters",
        ));
    }
    Ok(name)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    //! Helpers the command families' tests share.

    use super::*;
    use opkit::text::tokenize;

    /// `metric`-style arguments, parsed.
    pub(super) fn q(s: &str) -> Result<MetricQuery, CommandError> {
        MetricQuery::parse(&Args::new(tokenize(s)))
    }
}
