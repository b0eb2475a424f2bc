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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{AlarmType, Dimension, StateValue, Statistic};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::format::{self, AwsFailure, Table, code_block, sdk_error};
use opkit::BoxFuture;
use opkit::engine::command::{Args, Command, CommandError, Ctx, Script};
use opkit::slack::Reply;
use opkit::slack::web::{FileUpload, FileUploader};
use opkit::timespec::{format_duration, format_time, parse_duration};

/// Alarms a listing shows before "and N more" (a Slack section holds 3000
/// characters; ten alarms with their reasons fit).
const MAX_ALARMS: usize = 10;
/// Most alarms on one watchlist.
pub const MAX_WATCHED: usize = 50;
/// Longest window `metric` and `graph` accept.
const MAX_WINDOW: Duration = Duration::days(15);
/// Rows `metric` aims for at most.
const TARGET_ROWS: i64 = 12;
/// Periods CloudWatch users expect, in seconds.
const PERIODS: [i64; 12] = [
    60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
];

/// The watchlist, kept in the script's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudWatchState {
    /// Watched alarm names.
    #[serde(default)]
    pub watched: BTreeSet<String>,
}

/// Renders a CloudWatch metric widget (JSON) as a PNG.
pub trait MetricImages: Send + Sync {
    /// The PNG bytes for `widget`.
    fn render<'a>(&'a self, widget: &'a str) -> BoxFuture<'a, Result<Vec<u8>, AwsFailure>>;
}

/// The real renderer: GetMetricWidgetImage.
impl MetricImages for Client {
    fn render<'a>(&'a self, widget: &'a str) -> BoxFuture<'a, Result<Vec<u8>, AwsFailure>> {
        Box::pin(async move {
            let out = self
                .get_metric_widget_image()
                .metric_widget(widget)
                .output_format("png")
                .send()
                .await
                .map_err(|e| AwsFailure::from_sdk(&e))?;
            Ok(out
                .metric_widget_image()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default())
        })
    }
}

/// How the CloudWatch pack works in one deployment.
#[derive(Clone, Default)]
pub struct CloudWatchOptions {
    /// Draws graphs; `None`: the CloudWatch client itself (GetMetricWidgetImage).
    pub images: Option<Arc<dyn MetricImages>>,
    /// Posts graphs to Slack; `None`: `graph` explains that it needs the bot token.
    pub uploader: Option<Arc<dyn FileUploader>>,
}

struct Pack {
    client: Client,
    region: String,
    images: Arc<dyn MetricImages>,
    uploader: Option<Arc<dyn FileUploader>>,
}

type Handler =
    fn(&mut Ctx<CloudWatchState>, Arc<Pack>) -> BoxFuture<'_, Result<Reply, CommandError>>;

/// The CloudWatch script, on `client`'s region.
pub fn script(client: Client, opts: CloudWatchOptions) -> Script<CloudWatchState> {
    let region = client
        .config()
        .region()
        .map_or_else(|| "an unknown region".to_string(), ToString::to_string);
    let images = opts
        .images
        .unwrap_or_else(|| Arc::new(client.clone()) as Arc<dyn MetricImages>);
    let pack = Arc::new(Pack {
        client,
        region,
        images,
        uploader: opts.uploader,
    });
    let command = |form: &str, usage: &str, text: &str, run: Handler| {
        let pack = pack.clone();
        Command::new(form)
            .usage(usage)
            .describe(text)
            .handler(move |ctx| run(ctx, pack.clone()))
    };
    Script::new("cloudwatch")
        .command(command(
            "alarms",
            "[alarm|ok|insufficient_data|all]",
            "CloudWatch alarms in a state (ALARM by default), newest change first",
            |c, p| Box::pin(alarms(c, p)),
        ))
        .command(command(
            "alarms prefix",
            "<prefix> [<state>]",
            "CloudWatch alarms whose name starts with a prefix",
            |c, p| Box::pin(alarms_prefix(c, p)),
        ))
        .command(command(
            "alarms watch",
            "<alarm name>",
            "Add an alarm to the watchlist",
            |c, p| Box::pin(watch(c, p)),
        ))
        .command(command(
            "alarms unwatch",
            "<alarm name>",
            "Take an alarm off the watchlist",
            |c, p| Box::pin(unwatch(c, p)),
        ))
        .command(command(
            "alarms watched",
            "",
            "The watchlist, with each alarm's current state",
            |c, p| Box::pin(watched(c, p)),
        ))
        .command(command(
            "health",
            "",
            "CloudWatch alarm counts by state, at a glance",
            |c, p| Box::pin(health(c, p)),
        ))
        .command(command(
            "metric",
            "<namespace> <metric> [<dim>=<value> …] [last 1h|1d] [stat avg|max|min|sum|count|p99]",
            "A CloudWatch metric's statistics over a window, as a table",
            |c, p| Box::pin(metric(c, p)),
        ))
        .command(command(
            "graph",
            "<alarm name> | <namespace> <metric> [<dim>=<value> …] [last …] [stat …]",
            "A CloudWatch metric or alarm as a picture, posted to the channel",
            |c, p| Box::pin(graph(c, p)),
        ))
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
    fn line(&self, now: DateTime<Utc>) -> String {
        let since = match self.since {
            Some(at) => format!(
                " since {} ({} ago)",
                format_time(at),
                format_duration(now - at)
            ),
            None => String::new(),
        };
        let mut line = format!("• *{}* — {}{since}", self.name, self.state);
        if !self.reason.is_empty() {
            line.push_str(&format!("\n    {}", format::clip(&self.reason, 120)));
        }
        line
    }
}

fn to_chrono(t: Option<&aws_sdk_cloudwatch::primitives::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// Parses a state word: `alarm`, `ok`, `insufficient_data` (or `insufficient`),
/// `all` (`None`).
pub fn parse_state(word: &str) -> Result<Option<StateValue>, CommandError> {
    match word.to_ascii_lowercase().replace('-', "_").as_str() {
        "alarm" | "alarms" | "alarming" => Ok(Some(StateValue::Alarm)),
        "ok" => Ok(Some(StateValue::Ok)),
        "insufficient_data" | "insufficient" | "insufficientdata" => {
            Ok(Some(StateValue::InsufficientData))
        }
        "all" | "any" => Ok(None),
        other => Err(CommandError::usage(format!(
            "`{other}` is not a state: use alarm, ok, insufficient_data or all"
        ))),
    }
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
                page.map_err(|e| sdk_error(&e, "CloudWatch", "list alarms", &self.region))?;
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

fn state_label(state: &Option<StateValue>) -> &str {
    state.as_ref().map_or("any state", |s| s.as_str())
}

fn alarm_listing(summary: String, alarms: &[AlarmView], now: DateTime<Utc>) -> Reply {
    let (shown, more) = format::truncate(alarms.to_vec(), MAX_ALARMS);
    let mut lines: Vec<String> = shown.iter().map(|a| a.line(now)).collect();
    lines.extend(format::and_more(more));
    format::reply(summary, lines.join("\n"))
}

async fn alarms(ctx: &mut Ctx<CloudWatchState>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    let state = match ctx.args.len() {
        0 => Some(StateValue::Alarm),
        1 => parse_state(ctx.args.word(0, "a state")?)?,
        _ => return Err(CommandError::usage("give at most one state")),
    };
    let found = pack.alarms(state.clone(), None, None).await?;
    let label = state_label(&state);
    if found.is_empty() {
        return Ok(format::reply(
            format!("No alarms in {label} in {}.", pack.region),
            "",
        ));
    }
    let summary = format!(
        "{} alarm{} in {label} in {}, newest change first:",
        found.len(),
        plural(found.len()),
        pack.region
    );
    Ok(alarm_listing(summary, &found, ctx.now))
}

async fn alarms_prefix(
    ctx: &mut Ctx<CloudWatchState>,
    pack: Arc<Pack>,
) -> Result<Reply, CommandError> {
    let prefix = ctx.args.word(0, "a name prefix")?.to_string();
    if prefix.chars().count() > 255 {
        return Err(CommandError::usage("that prefix is too long"));
    }
    let state = match ctx.args.len() {
        1 => None,
        2 => parse_state(ctx.args.word(1, "a state")?)?,
        _ => return Err(CommandError::usage("give a prefix and at most one state")),
    };
    let found = pack.alarms(state.clone(), Some(&prefix), None).await?;
    let label = state_label(&state);
    if found.is_empty() {
        return Ok(format::reply(
            format!(
                "No alarms starting with `{prefix}` in {label} in {}.",
                pack.region
            ),
            "",
        ));
    }
    let summary = format!(
        "{} alarm{} starting with `{prefix}` in {label} in {}, newest change first:",
        found.len(),
        plural(found.len()),
        pack.region
    );
    Ok(alarm_listing(summary, &found, ctx.now))
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

async fn watch(ctx: &mut Ctx<CloudWatchState>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    let name = one_name(&ctx.args)?;
    if ctx.state.watched.contains(&name) {
        return Err(CommandError::user(format!("*{name}* is already watched.")));
    }
    if ctx.state.watched.len() >= MAX_WATCHED {
        return Err(CommandError::user(format!(
            "The watchlist is full ({MAX_WATCHED} alarms); unwatch one first."
        )));
    }
    let Some(alarm) = pack.alarm(&name).await? else {
        return Err(CommandError::user(format!(
            "No alarm named *{name}* in {} (names are case-sensitive).",
            pack.region
        )));
    };
    ctx.state.watched.insert(name.clone());
    Ok(Reply::text(format!(
        "Watching *{name}* ({} now in {}). `alarms watched` shows the watchlist.",
        alarm.state, pack.region
    )))
}

async fn unwatch(ctx: &mut Ctx<CloudWatchState>, _pack: Arc<Pack>) -> Result<Reply, CommandError> {
    let name = one_name(&ctx.args)?;
    if !ctx.state.watched.remove(&name) {
        return Err(CommandError::user(format!(
            "*{name}* is not on the watchlist."
        )));
    }
    Ok(Reply::text(format!("Stopped watching *{name}*.")))
}

async fn watched(ctx: &mut Ctx<CloudWatchState>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    if !ctx.args.is_empty() {
        return Err(CommandError::usage("`alarms watched` takes no arguments"));
    }
    if ctx.state.watched.is_empty() {
        return Ok(Reply::text(
            "The watchlist is empty: `alarms watch <name>` adds an alarm.",
        ));
    }
    let names: Vec<String> = ctx.state.watched.iter().cloned().collect();
    let mut found = Vec::new();
    for chunk in names.chunks(100) {
        found.extend(pack.alarms(None, None, Some(chunk.to_vec())).await?);
    }
    // Those in ALARM first, newest change first; then the rest; then the gone.
    found.sort_by(|a, b| {
        (b.state == "ALARM")
            .cmp(&(a.state == "ALARM"))
            .then(b.since.cmp(&a.since))
    });
    let now = ctx.now;
    let mut lines: Vec<String> = found.iter().map(|a| a.line(now)).collect();
    lines.extend(
        names
            .iter()
            .filter(|n| !found.iter().any(|a| &a.name == *n))
            .map(|n| format!("• *{n}* — no longer exists in {}", pack.region)),
    );
    let (mut lines, more) = format::truncate(lines, MAX_ALARMS);
    lines.extend(format::and_more(more));
    let alarming = found.iter().filter(|a| a.state == "ALARM").count();
    Ok(format::reply(
        format!(
            "{} watched alarm{} in {}, {alarming} in ALARM:",
            names.len(),
            plural(names.len()),
            pack.region
        ),
        lines.join("\n"),
    ))
}

/// Counts by state, the report `health` gives.
pub fn health_report(alarms: &[AlarmView], region: &str) -> (String, String) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for a in alarms {
        *counts.entry(a.state.as_str()).or_default() += 1;
    }
    let n = |s: &str| counts.get(s).copied().unwrap_or(0);
    let (alarm, ok, insufficient) = (n("ALARM"), n("OK"), n("INSUFFICIENT_DATA"));
    let icon = if alarm > 0 {
        ":red_circle:"
    } else if insufficient > 0 {
        ":large_yellow_circle:"
    } else {
        ":large_green_circle:"
    };
    let summary = format!(
        "{icon} Health of {region}: {alarm} in ALARM, {ok} OK, {insufficient} INSUFFICIENT_DATA ({} alarm{})",
        alarms.len(),
        plural(alarms.len())
    );
    let in_alarm: Vec<String> = alarms
        .iter()
        .filter(|a| a.state == "ALARM")
        .map(|a| format!("*{}*", a.name))
        .collect();
    let (shown, more) = format::truncate(in_alarm, 10);
    let mut body = if shown.is_empty() {
        String::new()
    } else {
        format!("In ALARM: {}", shown.join(", "))
    };
    if let Some(note) = format::and_more(more) {
        body.push_str(&format!(" {note}"));
    }
    (summary, body)
}

async fn health(ctx: &mut Ctx<CloudWatchState>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    if !ctx.args.is_empty() {
        return Err(CommandError::usage("`health` takes no arguments"));
    }
    let all = pack.alarms(None, None, None).await?;
    let (summary, body) = health_report(&all, &pack.region);
    Ok(format::reply(summary, body))
}

/// A statistic: one of CloudWatch's five, or a percentile (`p99`, `p99.9`).
#[derive(Debug, Clone, PartialEq)]
pub enum Stat {
    /// Average, Maximum, Minimum, Sum, SampleCount.
    Standard(Statistic),
    /// An extended statistic such as `p99`.
    Percentile(String),
}

impl Stat {
    /// Parses `avg`, `max`, `min`, `sum`, `count` (and their full names) or `pNN`.
    pub fn parse(word: &str) -> Result<Self, CommandError> {
        let w = word.to_ascii_lowercase();
        let standard = match w.as_str() {
            "avg" | "average" | "mean" => Some(Statistic::Average),
            "max" | "maximum" => Some(Statistic::Maximum),
            "min" | "minimum" => Some(Statistic::Minimum),
            "sum" | "total" => Some(Statistic::Sum),
            "count" | "samplecount" | "samples" => Some(Statistic::SampleCount),
            _ => None,
        };
        if let Some(s) = standard {
            return Ok(Stat::Standard(s));
        }
        if let Some(p) = w.strip_prefix('p')
            && let Ok(v) = p.parse::<f64>()
            && v > 0.0
            && v < 100.0
            && p.len() <= 6
        {
            return Ok(Stat::Percentile(format!("p{p}")));
        }
        Err(CommandError::usage(format!(
            "`{word}` is not a statistic: use avg, max, min, sum, count or a percentile like p99"
        )))
    }

    /// The name CloudWatch uses (`Average`, `p99`).
    pub fn name(&self) -> &str {
        match self {
            Stat::Standard(s) => s.as_str(),
            Stat::Percentile(p) => p,
        }
    }
}

/// What `metric` and `graph` ask CloudWatch for.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    /// `AWS/SQS`.
    pub namespace: String,
    /// `ApproximateNumberOfMessagesVisible`.
    pub metric: String,
    /// Dimension name and value pairs.
    pub dims: Vec<(String, String)>,
    /// How far back to look.
    pub window: Duration,
    /// Which statistic.
    pub stat: Stat,
    /// Whether the user gave `last` (an alarm's graph otherwise uses its own default).
    pub window_given: bool,
}

impl MetricQuery {
    /// Parses `<namespace> <metric> [dim=value …] [last <d>] [stat <s>]`.
    pub fn parse(args: &Args) -> Result<Self, CommandError> {
        let (positional, options) = args.options(&["last", "stat"])?;
        let namespace = positional
            .word(0, "a namespace such as AWS/EC2")?
            .to_string();
        let metric = positional
            .word(1, "a metric name such as CPUUtilization")?
            .to_string();
        if namespace.len() > 255 || metric.len() > 255 {
            return Err(CommandError::usage(
                "namespace and metric names are at most 255 characters",
            ));
        }
        let dims = format::parse_pairs(&positional, 2, "a dimension", 30)?;
        let (window, window_given) = parse_window(&options)?;
        let stat = options
            .get("stat")
            .map(Stat::parse)
            .transpose()?
            .unwrap_or(Stat::Standard(Statistic::Average));
        Ok(Self {
            namespace,
            metric,
            dims,
            window,
            stat,
            window_given,
        })
    }

    /// The period giving at most ~12 rows over the window.
    pub fn period(&self) -> i64 {
        let wanted = (self.window.num_seconds() + TARGET_ROWS - 1) / TARGET_ROWS;
        PERIODS
            .iter()
            .copied()
            .find(|p| *p >= wanted)
            .unwrap_or(86400)
    }

    /// `AWS/SQS ApproximateAgeOfOldestMessage (QueueName=jobs)`.
    pub fn describe(&self) -> String {
        let dims = if self.dims.is_empty() {
            String::new()
        } else {
            let d: Vec<String> = self.dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(" ({})", d.join(", "))
        };
        format!("{} {}{dims}", self.namespace, self.metric)
    }

    fn dimensions(&self) -> Vec<Dimension> {
        self.dims
            .iter()
            .map(|(k, v)| Dimension::builder().name(k).value(v).build())
            .collect()
    }

    /// The GetMetricWidgetImage request for this metric.
    pub fn widget(&self, region: &str, title: &str, threshold: Option<f64>) -> String {
        let mut metric = vec![json!(self.namespace), json!(self.metric)];
        for (k, v) in &self.dims {
            metric.push(json!(k));
            metric.push(json!(v));
        }
        metric.push(json!({ "stat": self.stat.name() }));
        let mut widget = json!({
            "metrics": [metric],
            "view": "timeSeries",
            "stacked": false,
            "region": region,
            "stat": self.stat.name(),
            "period": self.period(),
            "start": format!("-PT{}M", self.window.num_minutes().max(1)),
            "end": "P0D",
            "title": title,
            "width": 800,
            "height": 400,
        });
        if let Some(t) = threshold {
            widget["annotations"] = json!({ "horizontal": [{ "label": "threshold", "value": t }] });
        }
        widget.to_string()
    }
}

/// `last <duration>`: default one hour, at most fifteen days.
fn parse_window(
    options: &opkit::engine::command::Options,
) -> Result<(Duration, bool), CommandError> {
    let Some(window) = options.get("last") else {
        return Ok((Duration::hours(1), false));
    };
    let window = parse_duration(window)?;
    if window < Duration::minutes(5) {
        return Err(CommandError::usage("`last` must be at least 5m"));
    }
    if window > MAX_WINDOW {
        return Err(CommandError::usage("`last` can be at most 15d"));
    }
    Ok((window, true))
}

/// One value of a datapoint, shortly: `12`, `12.5`, `0.0012`, `1.2e9`.
pub fn format_value(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(0.001..1e9).contains(&a) {
        return format!("{v:.3e}");
    }
    let s = if a >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    };
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

async fn metric(ctx: &mut Ctx<CloudWatchState>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    let q = MetricQuery::parse(&ctx.args)?;
    let end = ctx.now;
    let start = end - q.window;
    let period = q.period();
    let mut request = pack
        .client
        .get_metric_statistics()
        .namespace(&q.namespace)
        .metric_name(&q.metric)
        .set_dimensions(Some(q.dimensions()))
        .start_time(to_smithy(start))
        .end_time(to_smithy(end))
        .period(period as i32);
    request = match &q.stat {
        Stat::Standard(s) => request.statistics(s.clone()),
        Stat::Percentile(p) => request.extended_statistics(p),
    };
    let out = request
        .send()
        .await
        .map_err(|e| sdk_error(&e, "CloudWatch", "read metric statistics", &pack.region))?;
    let mut points: Vec<(DateTime<Utc>, f64)> = out
        .datapoints()
        .iter()
        .filter_map(|d| {
            let at = to_chrono(d.timestamp())?;
            let v = match &q.stat {
                Stat::Standard(Statistic::Average) => d.average(),
                Stat::Standard(Statistic::Maximum) => d.maximum(),
                Stat::Standard(Statistic::Minimum) => d.minimum(),
                Stat::Standard(Statistic::Sum) => d.sum(),
                Stat::Standard(_) => d.sample_count(),
                Stat::Percentile(p) => d.extended_statistics()?.get(p).copied(),
            }?;
            Some((at, v))
        })
        .collect();
    if points.is_empty() {
        return Err(no_datapoints(&pack, &q).await);
    }
    points.sort_by_key(|(at, _)| *at);
    let unit = out
        .datapoints()
        .iter()
        .find_map(|d| d.unit())
        .map(|u| u.as_str().to_string())
        .filter(|u| u != "None");
    let rows = render_points(&q, &points, unit.as_deref());
    let summary = format!(
        "*{}*: {} per {} over the last {} in {}",
        q.describe(),
        q.stat.name(),
        format_duration(Duration::seconds(period)),
        format_duration(q.window),
        pack.region
    );
    Ok(format::reply(summary, rows))
}

/// The datapoints as a table (time, value), with the unit in the header and the
/// lowest and highest value under it.
pub fn render_points(
    q: &MetricQuery,
    points: &[(DateTime<Utc>, f64)],
    unit: Option<&str>,
) -> String {
    let time_format = if q.window > Duration::days(1) {
        "%m-%d %H:%M"
    } else {
        "%H:%M"
    };
    let header = match unit {
        Some(u) => format!("{} ({u})", q.stat.name()),
        None => q.stat.name().to_string(),
    };
    let mut table = Table::new(&["Time (UTC)", &header]);
    for (at, v) in points {
        table.row(vec![at.format(time_format).to_string(), format_value(*v)]);
    }
    // Keep the newest rows if the service returned more than asked for.
    let skip = points.len().saturating_sub(format::MAX_ROWS);
    let mut text = if skip > 0 {
        let mut newest = Table::new(&["Time (UTC)", &header]);
        for (at, v) in &points[skip..] {
            newest.row(vec![at.format(time_format).to_string(), format_value(*v)]);
        }
        format!("{}\n…and {skip} older", code_block(&newest.render()))
    } else {
        code_block(&table.render())
    };
    let min = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    text.push_str(&format!(
        "\nlowest {}, highest {}",
        format_value(min),
        format_value(max)
    ));
    text
}

/// Why there were no datapoints: no such metric (with a suggestion), or the
/// metric exists but has no data for these dimensions in the window.
async fn no_datapoints(pack: &Pack, q: &MetricQuery) -> CommandError {
    let listed = pack
        .client
        .list_metrics()
        .namespace(&q.namespace)
        .metric_name(&q.metric)
        .send()
        .await;
    let known = match listed {
        Ok(out) => out.metrics().to_vec(),
        Err(e) => return sdk_error(&e, "CloudWatch", "list metrics", &pack.region),
    };
    let region = &pack.region;
    if known.is_empty() {
        let mut text = format!(
            "CloudWatch has no metric `{}` in namespace `{}` in {region} (names are case-sensitive).",
            q.metric, q.namespace
        );
        if let Some(close) = suggest(pack, q).await {
            text.push_str(&format!(" Did you mean `{close}`?"));
        }
        return CommandError::user(text);
    }
    let mut sets: Vec<String> = known
        .iter()
        .map(|m| {
            let d: Vec<String> = m
                .dimensions()
                .iter()
                .map(|d| format!("{}={}", d.name().unwrap_or("?"), d.value().unwrap_or("?")))
                .collect();
            if d.is_empty() {
                "(no dimensions)".to_string()
            } else {
                d.join(" ")
            }
        })
        .collect();
    sets.sort();
    sets.dedup();
    let (shown, more) = format::truncate(sets, 5);
    let mut text = format!(
        "No datapoints for *{}* in the last {} in {region}. It is published with: {}",
        q.describe(),
        format_duration(q.window),
        shown.join("; ")
    );
    if let Some(note) = format::and_more(more) {
        text.push_str(&format!(" {note}"));
    }
    CommandError::user(text)
}

/// The closest metric name in the namespace, if one is close.
async fn suggest(pack: &Pack, q: &MetricQuery) -> Option<String> {
    let out = pack
        .client
        .list_metrics()
        .namespace(&q.namespace)
        .send()
        .await
        .ok()?;
    let wanted = q.metric.to_lowercase();
    out.metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .map(|name| (strsim::jaro_winkler(&wanted, &name.to_lowercase()), name))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name.to_string())
}

fn to_smithy(t: DateTime<Utc>) -> aws_sdk_cloudwatch::primitives::DateTime {
    aws_sdk_cloudwatch::primitives::DateTime::from_secs(t.timestamp())
}

async fn graph(ctx: &mut Ctx<CloudWatchState>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    let (positional, options) = ctx.args.options(&["last", "stat"])?;
    let (query, title, threshold) = if positional.len() == 1 {
        let name = one_name(&positional)?;
        let Some(alarm) = pack.alarm(&name).await? else {
            return Err(CommandError::user(format!(
                "No alarm named *{name}* in {}. For a metric, give its namespace and name: \
                 `graph AWS/EC2 CPUUtilization InstanceId=i-…`",
                pack.region
            )));
        };
        let Some(mut q) = alarm.metric else {
            let what = if alarm.composite {
                "a composite alarm"
            } else {
                "a metric-math alarm"
            };
            return Err(CommandError::user(format!(
                "*{name}* is {what}, which has no single metric to draw; graph its metrics instead."
            )));
        };
        let (window, given) = parse_window(&options)?;
        if given {
            q.window = window;
        }
        if let Some(stat) = options.get("stat") {
            q.stat = Stat::parse(stat)?;
        }
        let title = format!("{} ({})", name, alarm.state);
        (q, title, alarm.threshold)
    } else {
        let q = MetricQuery::parse(&ctx.args)?;
        let title = format!("{} {}", q.metric, q.stat.name());
        (q, title, None)
    };
    let Some(uploader) = &pack.uploader else {
        return Err(CommandError::user(
            "`graph` posts a picture to Slack, which needs the bot token (SLACK_BOT_TOKEN) in this deployment.",
        ));
    };
    let Some(channel) = ctx.caller.channel.clone() else {
        return Err(CommandError::user(
            "`graph` posts a picture to a channel: run it from one.",
        ));
    };
    let widget = query.widget(&pack.region, &title, threshold);
    let png = pack
        .images
        .render(&widget)
        .await
        .map_err(|f| f.to_user("CloudWatch", "draw the graph", &pack.region))?;
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(CommandError::internal(format!(
            "GetMetricWidgetImage returned {} bytes that are not a PNG",
            png.len()
        )));
    }
    let comment = format!(
        "{}, {} over the last {} in {} (asked by {})",
        query.describe(),
        query.stat.name(),
        format_duration(query.window),
        pack.region,
        ctx.caller.user.mention()
    );
    let upload = FileUpload {
        channel: channel.as_str().to_string(),
        filename: format!("{}.png", file_stem(&query.metric)),
        title,
        bytes: png,
        initial_comment: Some(comment.clone()),
        thread_ts: None,
    };
    uploader.upload_file(&upload).await.map_err(|e| {
        tracing::warn!(error = %e, "graph upload failed");
        CommandError::user(format!(
            "I drew the graph but Slack would not take it ({}). Is the bot in this channel?",
            upload_error(&e)
        ))
    })?;
    Ok(Reply::text(format!("Posted a graph of {comment}.")))
}

fn upload_error(e: &opkit::slack::web::WebApiError) -> String {
    match e {
        opkit::slack::web::WebApiError::Slack { error, .. } => error.clone(),
        _ => "it did not answer".to_string(),
    }
}

fn file_stem(s: &str) -> String {
    let stem: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if stem.is_empty() {
        "graph".into()
    } else {
        stem
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opkit::text::tokenize;

    fn q(s: &str) -> Result<MetricQuery, CommandError> {
        MetricQuery::parse(&Args::new(tokenize(s)))
    }

    #[test]
    fn metric_arguments_have_sane_defaults() {
        let m = q("AWS/SQS ApproximateNumberOfMessagesVisible QueueName=jobs").unwrap();
        assert_eq!(m.namespace, "AWS/SQS");
        assert_eq!(m.dims, vec![("QueueName".into(), "jobs".into())]);
        assert_eq!(m.window, Duration::hours(1));
        assert_eq!(m.stat, Stat::Standard(Statistic::Average));
        assert_eq!(m.period(), 300, "1h in 12 rows of 5m");
        assert_eq!(
            m.describe(),
            "AWS/SQS ApproximateNumberOfMessagesVisible (QueueName=jobs)"
        );
    }

    #[test]
    fn last_and_stat_options_parse_and_choose_the_period() {
        let m = q("AWS/EC2 CPUUtilization InstanceId=i-1 last 1d stat p99").unwrap();
        assert_eq!(m.window, Duration::days(1));
        assert_eq!(m.stat, Stat::Percentile("p99".into()));
        assert_eq!(m.period(), 7200);
        assert_eq!(q("A B last 3h stat MAX").unwrap().period(), 900);
        assert_eq!(q("A B last 15d").unwrap().period(), 86400);
        assert_eq!(q("A B last 5m").unwrap().period(), 60);
        assert_eq!(
            q("A B stat p99.9").unwrap().stat,
            Stat::Percentile("p99.9".into())
        );
    }

    #[test]
    fn bad_metric_arguments_say_what_is_wrong() {
        let err = |s: &str| q(s).unwrap_err().to_string();
        assert_eq!(
            err("AWS/EC2"),
            "missing a metric name such as CPUUtilization"
        );
        assert_eq!(err(""), "missing a namespace such as AWS/EC2");
        assert_eq!(
            err("A B InstanceId"),
            "expected a dimension like `key=value`, not `InstanceId`"
        );
        assert!(err("A B stat median").starts_with("`median` is not a statistic"));
        assert!(err("A B stat p100").starts_with("`p100` is not a statistic"));
        assert_eq!(err("A B last 1m"), "`last` must be at least 5m");
        assert_eq!(err("A B last 30d"), "`last` can be at most 15d");
        assert_eq!(err("A B last"), "`last` needs a value");
        assert!(err("A B last soon").contains("soon"));
    }

    #[test]
    fn states_parse_forgivingly() {
        assert_eq!(parse_state("OK").unwrap(), Some(StateValue::Ok));
        assert_eq!(
            parse_state("insufficient-data").unwrap(),
            Some(StateValue::InsufficientData)
        );
        assert_eq!(parse_state("all").unwrap(), None);
        assert!(parse_state("red").is_err());
    }

    #[test]
    fn values_are_short() {
        assert_eq!(format_value(12.0), "12");
        assert_eq!(format_value(12.3456), "12.346");
        assert_eq!(format_value(1234.56), "1234.6");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(3.2e10), "3.200e10");
    }

    #[test]
    fn points_render_as_a_table_with_the_range() {
        let m = q("AWS/SQS Depth").unwrap();
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let points = vec![(t0, 3.0), (t0 + Duration::minutes(5), 10.5)];
        assert_eq!(
            render_points(&m, &points, Some("Count")),
            "```\nTime (UTC)  Average (Count)\n08:00                     3\n08:05                  10.5\n```\nlowest 3, highest 10.5"
        );
    }

    #[test]
    fn health_counts_by_state_and_names_the_alarming() {
        let a = |name: &str, state: &str| AlarmView {
            name: name.into(),
            state: state.into(),
            reason: String::new(),
            since: None,
            metric: None,
            threshold: None,
            composite: false,
        };
        let (summary, body) = health_report(
            &[
                a("db-cpu", "ALARM"),
                a("web", "OK"),
                a("q", "INSUFFICIENT_DATA"),
                a("x", "OK"),
            ],
            "eu-west-1",
        );
        assert_eq!(
            summary,
            ":red_circle: Health of eu-west-1: 1 in ALARM, 2 OK, 1 INSUFFICIENT_DATA (4 alarms)"
        );
        assert_eq!(body, "In ALARM: *db-cpu*");
        let (summary, body) = health_report(&[], "eu-west-1");
        assert!(summary.starts_with(":large_green_circle: Health of eu-west-1: 0 in ALARM"));
        assert_eq!(body, "");
    }

    #[test]
    fn widgets_carry_the_metric_window_and_threshold() {
        let m = q("AWS/EC2 CPUUtilization InstanceId=i-1 last 3h stat max").unwrap();
        let w: serde_json::Value =
            serde_json::from_str(&m.widget("eu-west-1", "cpu", Some(80.0))).unwrap();
        assert_eq!(
            w["metrics"][0],
            json!(["AWS/EC2", "CPUUtilization", "InstanceId", "i-1", {"stat": "Maximum"}])
        );
        assert_eq!(w["start"], "-PT180M");
        assert_eq!(w["period"], 900);
        assert_eq!(w["region"], "eu-west-1");
        assert_eq!(w["annotations"]["horizontal"][0]["value"], 80.0);
        assert_eq!(file_stem("CPU Utilization/x"), "CPU_Utilization_x");
    }
}
