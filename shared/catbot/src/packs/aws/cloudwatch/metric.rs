//! `metric`: a metric's statistics over a window, as a table; and the metric
//! query (`Stat`, `MetricQuery`, `last …`) that `graph` shares.

use std::sync::Arc;

use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use chrono::{DateTime, Duration, Utc};

use super::{CloudWatchState, Pack, to_chrono};
use crate::packs::aws::format::{self, Table, code_block, sdk_error};
use opkit::engine::command::{Args, CommandError, Ctx};
use opkit::mrkdwn;
use opkit::slack::Mrkdwn;
use opkit::slack::Reply;
use opkit::timespec::{format_duration, parse_duration};

/// Longest window `metric` and `graph` accept.
const MAX_WINDOW: Duration = Duration::days(15);
/// Rows `metric` aims for at most.
const TARGET_ROWS: i64 = 12;
/// Periods CloudWatch users expect, in seconds.
const PERIODS: [i64; 12] = [
    60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
];

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
        Err(CommandError::usage(crate::packs::aws::format::plain(
            format!(
                "`{word}` is not a statistic: use avg, max, min, sum, count or a percentile like p99"
            ),
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
}

/// `last <duration>`: default one hour, at most fifteen days.
pub(super) fn parse_window(
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

pub(super) async fn metric(
    ctx: &mut Ctx<CloudWatchState>,
    pack: Arc<Pack>,
) -> Result<Reply, CommandError> {
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
        .map_err(|e| sdk_error(&e, "CloudWatch", "read metric statistics", &pack.site.label))?;
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
        pack.site.label
    );
    Ok(format::reply(format::plain(summary), rows))
}

/// The datapoints as a table (time, value), with the unit in the header and the
/// lowest and highest value under it.
pub fn render_points(
    q: &MetricQuery,
    points: &[(DateTime<Utc>, f64)],
    unit: Option<&str>,
) -> Mrkdwn {
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
    let text = if skip > 0 {
        let mut newest = Table::new(&["Time (UTC)", &header]);
        for (at, v) in &points[skip..] {
            newest.row(vec![at.format(time_format).to_string(), format_value(*v)]);
        }
        mrkdwn!("{}\n…and {} older", code_block(&newest.render()), skip)
    } else {
        code_block(&table.render())
    };
    let min = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let range = format::plain(format!(
        "lowest {}, highest {}",
        format_value(min),
        format_value(max)
    ));
    mrkdwn!("{}\n{}", text, range)
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
        Err(e) => return sdk_error(&e, "CloudWatch", "list metrics", &pack.site.label),
    };
    let region = &pack.site.label;
    if known.is_empty() {
        let mut text = format!(
            "CloudWatch has no metric `{}` in namespace `{}` in {region} (names are case-sensitive).",
            q.metric, q.namespace
        );
        if let Some(close) = suggest(pack, q).await {
            text.push_str(&format!(" Did you mean `{close}`?"));
        }
        return CommandError::user(format::plain(text));
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
    CommandError::user(format::plain(text))
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

#[cfg(test)]
mod tests {
    use super::super::tests::q;
    use super::*;

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
}
