//! The EventBridge events the notifications path reads, parsed at the edge.
//!
//! Two `detail-type`s, in the shapes EventBridge documents ("Alarm events and
//! EventBridge" in the CloudWatch user guide; "Amazon EC2 events" in the
//! EventBridge events reference):
//!
//! ```text
//! source aws.cloudwatch, "CloudWatch Alarm State Change"
//!   detail.alarmName, detail.state{value, reason, reasonData, timestamp},
//!   detail.previousState{value, …}, detail.configuration{description, metrics[…]}
//! source aws.ec2, "EC2 Instance State-change Notification"
//!   detail["instance-id"], detail.state, time
//! ```
//!
//! Anything else — another source, a missing field, a state CloudWatch does not
//! have, a name past CloudWatch's 255 characters — is an [`EventError`] naming
//! what was wrong; nothing is posted for it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest alarm name CloudWatch accepts (PutMetricAlarm, `AlarmName`).
pub const ALARM_NAME_MAX: usize = 255;
/// How much of a state reason is kept (CloudWatch allows 1,023 characters).
pub const REASON_MAX: usize = 500;

/// A CloudWatch alarm state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    /// `ALARM`.
    Alarm,
    /// `OK`.
    Ok,
    /// `INSUFFICIENT_DATA`.
    InsufficientData,
}

impl AlarmState {
    /// Every state, in CloudWatch's order.
    pub const ALL: [AlarmState; 3] = [
        AlarmState::Alarm,
        AlarmState::Ok,
        AlarmState::InsufficientData,
    ];

    /// CloudWatch's name: `ALARM`, `OK`, `INSUFFICIENT_DATA`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Alarm => "ALARM",
            AlarmState::Ok => "OK",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    /// Reads CloudWatch's name, in any case (`alarm`, `OK`, `insufficient_data`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
    }

    /// The emoji the notification leads with.
    pub fn emoji(self) -> &'static str {
        match self {
            AlarmState::Alarm => ":red_circle:",
            AlarmState::Ok => ":large_green_circle:",
            AlarmState::InsufficientData => ":white_circle:",
        }
    }
}

/// One "CloudWatch Alarm State Change" event, as the notification needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmChange {
    /// EventBridge's event id.
    pub id: String,
    /// The account the alarm is in.
    pub account: String,
    /// Its region.
    pub region: String,
    /// The alarm's name (at most [`ALARM_NAME_MAX`] characters).
    pub name: String,
    /// The alarm's ARN (the event's `resources`; else made of its partition-less
    /// parts, `arn:aws:cloudwatch:<region>:<account>:alarm:<name>`): what its
    /// tags are read by.
    pub arn: String,
    /// The new state.
    pub state: AlarmState,
    /// The state before, if the event says.
    pub previous: Option<AlarmState>,
    /// Why (CloudWatch's `state.reason`, cut to [`REASON_MAX`]).
    pub reason: String,
    /// When the state changed (`state.timestamp`): what orders the changes of
    /// one alarm, whatever order EventBridge delivers them in.
    pub at: DateTime<Utc>,
    /// The facts the message shows.
    pub facts: AlarmFacts,
}

/// What a notification says about an alarm besides its state: kept with the
/// incident so that the message can be drawn again (acknowledged, recovered).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlarmFacts {
    /// The alarm's name.
    pub name: String,
    /// Its account.
    pub account: String,
    /// Its region.
    pub region: String,
    /// The metric, `Namespace MetricName Dim=Value …`, for a single-metric alarm.
    #[serde(default)]
    pub metric: Option<String>,
    /// The threshold, from `reasonData` when CloudWatch gives it.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// A runbook: the alarm's `runbook` tag when it is an `https://` link, else
    /// the first `https://` link in its description ([`runbook_link`]).
    #[serde(default)]
    pub runbook: Option<String>,
    /// The latest reason.
    #[serde(default)]
    pub reason: String,
}

/// One "EC2 Instance State-change Notification" event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceChange {
    /// EventBridge's event id.
    pub id: String,
    /// The account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The instance id (`i-…`).
    pub instance: String,
    /// The new state (`pending`, `running`, `stopping`, `stopped`,
    /// `shutting-down`, `terminated`).
    pub state: String,
    /// The event's time (EC2's events carry no finer one).
    pub at: DateTime<Utc>,
}

/// An event the notifications path handles.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// An alarm changed state.
    Alarm(AlarmChange),
    /// An instance changed state.
    Instance(InstanceChange),
}

impl Notification {
    /// When the change happened, as the event says.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Notification::Alarm(c) => c.at,
            Notification::Instance(c) => c.at,
        }
    }

    /// EventBridge's event id.
    pub fn id(&self) -> &str {
        match self {
            Notification::Alarm(c) => &c.id,
            Notification::Instance(c) => &c.id,
        }
    }
}

/// Why an event was not read. Never worth a retry: the same bytes fail again.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// Not JSON.
    #[error("the event is not JSON: {0}")]
    Json(String),
    /// An event of a kind Opkit does not notify about.
    #[error("events of source `{event_source}` and detail-type `{detail_type}` are not handled")]
    Unsupported {
        /// Its `source`.
        event_source: String,
        /// Its `detail-type`.
        detail_type: String,
    },
    /// A field is missing or malformed.
    #[error("the event's `{0}` is missing or malformed")]
    Field(&'static str),
}

/// The detail-type of CloudWatch's alarm state changes.
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
/// The detail-type of EC2's instance state changes.
pub const INSTANCE_STATE_CHANGE: &str = "EC2 Instance State-change Notification";

/// Reads one EventBridge event (its JSON, as EventBridge delivers it to an SQS
/// target, or as the console shows it).
///
/// # Errors
/// [`EventError`] saying what is wrong.
pub fn parse(body: &str) -> Result<Notification, EventError> {
    let event: Value = serde_json::from_str(body).map_err(|e| EventError::Json(e.to_string()))?;
    let text = |field: &'static str| {
        event
            .get(field)
            .and_then(Value::as_str)
            .ok_or(EventError::Field(field))
    };
    let (source, detail_type) = (text("source")?, text("detail-type")?);
    let common = (
        text("id")?.to_string(),
        text("account")?.to_string(),
        text("region")?.to_string(),
    );
    let detail = event.get("detail").ok_or(EventError::Field("detail"))?;
    match (source, detail_type) {
        ("aws.cloudwatch", ALARM_STATE_CHANGE) => {
            let mut change = alarm(common, detail)?;
            let named = event
                .get("resources")
                .and_then(Value::as_array)
                .and_then(|r| r.first())
                .and_then(Value::as_str)
                .filter(|arn| is_alarm_arn(arn, &change));
            change.arn = match named {
                Some(arn) => arn.to_string(),
                None => format!(
                    "arn:aws:cloudwatch:{}:{}:alarm:{}",
                    change.region, change.account, change.name
                ),
            };
            Ok(Notification::Alarm(change))
        }
        ("aws.ec2", INSTANCE_STATE_CHANGE) => {
            let at = text("time")?;
            let at = DateTime::parse_from_rfc3339(at)
                .map_err(|_| EventError::Field("time"))?
                .with_timezone(&Utc);
            let field = |name: &'static str| {
                detail
                    .get(name)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty() && v.len() <= 64)
                    .ok_or(EventError::Field(name))
            };
            let instance = field("instance-id")?;
            if !instance.starts_with("i-") {
                return Err(EventError::Field("instance-id"));
            }
            Ok(Notification::Instance(InstanceChange {
                id: common.0,
                account: common.1,
                region: common.2,
                instance: instance.to_string(),
                state: field("state")?.to_string(),
                at,
            }))
        }
        _ => Err(EventError::Unsupported {
            event_source: source.chars().take(100).collect(),
            detail_type: detail_type.chars().take(100).collect(),
        }),
    }
}

fn alarm(
    (id, account, region): (String, String, String),
    detail: &Value,
) -> Result<AlarmChange, EventError> {
    let name = detail
        .get("alarmName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty() && n.chars().count() <= ALARM_NAME_MAX)
        .ok_or(EventError::Field("detail.alarmName"))?;
    let state = detail
        .get("state")
        .ok_or(EventError::Field("detail.state"))?;
    let value = |state: &Value| {
        state
            .get("value")
            .and_then(Value::as_str)
            .and_then(AlarmState::parse)
    };
    let new = value(state).ok_or(EventError::Field("detail.state.value"))?;
    let at = state
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(cloudwatch_time)
        .ok_or(EventError::Field("detail.state.timestamp"))?;
    let reason: String = optional_text(state, "reason", "detail.state.reason")?
        .unwrap_or_default()
        .chars()
        .take(REASON_MAX)
        .collect();
    let configuration = detail.get("configuration");
    let description = match configuration {
        Some(c) => optional_text(c, "description", "detail.configuration.description")?,
        None => None,
    };
    let reason_data = optional_text(state, "reasonData", "detail.state.reasonData")?;
    let facts = AlarmFacts {
        name: name.to_string(),
        account: account.clone(),
        region: region.clone(),
        metric: configuration.and_then(metric),
        threshold: reason_data
            .and_then(|data| serde_json::from_str::<Value>(data).ok())
            .and_then(|data| data.get("threshold").and_then(Value::as_f64)),
        runbook: description.and_then(runbook),
        reason: reason.clone(),
    };
    Ok(AlarmChange {
        id,
        account,
        region,
        name: name.to_string(),
        arn: String::new(),
        state: new,
        previous: detail.get("previousState").and_then(value),
        reason,
        at,
        facts,
    })
}

/// The text at `object[key]`: `None` when it is absent or `null` (CloudWatch
/// leaves out what an alarm does not have), [`EventError::Field`] naming `field`
/// when it is there but not text — a malformed event is dropped, never posted
/// with the field shown empty.
fn optional_text<'a>(
    object: &'a Value,
    key: &str,
    field: &'static str,
) -> Result<Option<&'a str>, EventError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(EventError::Field(field)),
    }
}

/// CloudWatch writes `2019-10-02T17:04:40.985+0000`; RFC 3339 is read too.
fn cloudwatch_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `AWS/EC2 CPUUtilization InstanceId=i-…` for an alarm on one metric.
fn metric(configuration: &Value) -> Option<String> {
    let metrics = configuration.get("metrics")?.as_array()?;
    let [only] = metrics.as_slice() else {
        return None;
    };
    let metric = only.get("metricStat")?.get("metric")?;
    let mut out = format!(
        "{} {}",
        metric.get("namespace")?.as_str()?,
        metric.get("name")?.as_str()?
    );
    if let Some(dims) = metric.get("dimensions").and_then(Value::as_object) {
        for (k, v) in dims {
            // A dimension that is not text is not shown as an empty value: the
            // metric is then left out.
            out.push_str(&format!(" {k}={}", v.as_str()?));
        }
    }
    Some(out.chars().take(300).collect())
}

/// Whether `arn` is the ARN of the alarm `change` is about:
/// `arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>`.
fn is_alarm_arn(arn: &str, change: &AlarmChange) -> bool {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    matches!(parts.as_slice(),
        ["arn", partition, "cloudwatch", region, account, "alarm", name]
            if !partition.is_empty() && *region == change.region
                && *account == change.account && *name == change.name)
}

/// The tag whose value is an alarm's runbook link.
pub const RUNBOOK_TAG: &str = "runbook";
/// The longest runbook link shown.
pub const RUNBOOK_MAX: usize = 500;

/// `value` as a runbook link, if it is one: an `https://` URL to a host (it
/// starts with a letter or digit), at most [`RUNBOOK_MAX`] characters, with no
/// whitespace, control character, or `<`, `>`, `|`, `"`, `` ` `` (which would
/// end or break a Slack link). Anything else is not a link: `None`, never
/// markup. Leading and trailing whitespace is ignored.
pub fn runbook_link(value: &str) -> Option<String> {
    let link = value.trim();
    let host = link.strip_prefix("https://")?;
    let fine = |c: char| {
        !c.is_whitespace() && !c.is_control() && !matches!(c, '<' | '>' | '|' | '"' | '`')
    };
    (host.starts_with(|c: char| c.is_ascii_alphanumeric())
        && link.chars().count() <= RUNBOOK_MAX
        && link.chars().all(fine))
    .then(|| link.to_string())
}

/// The first `https://` link in a description, if it is one ([`runbook_link`]).
fn runbook(description: &str) -> Option<String> {
    let start = description.find("https://")?;
    let word: String = description[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '<' | '>' | '|' | '"' | '`'))
        .collect();
    runbook_link(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALARM: &str = include_str!("../../../../../events/notify/alarm_state_change.json");
    const EC2: &str = include_str!("../../../../../events/notify/ec2_state_change.json");

    #[test]
    fn clouds_documented_alarm_event_is_read() {
        let Notification::Alarm(change) = parse(ALARM).unwrap() else {
            panic!("an alarm");
        };
        assert_eq!(change.name, "ServerCpuTooHigh");
        assert_eq!(change.state, AlarmState::Alarm);
        assert_eq!(change.previous, Some(AlarmState::Ok));
        assert_eq!(change.account, "123456789012");
        assert_eq!(change.region, "us-east-1");
        assert_eq!(change.at.to_rfc3339(), "2019-10-02T17:04:40.985+00:00");
        assert_eq!(
            change.facts.metric.as_deref(),
            Some("AWS/EC2 CPUUtilization InstanceId=i-12345678901234567")
        );
        assert_eq!(change.facts.threshold, Some(50.0));
        assert!(change.reason.starts_with("Threshold Crossed"));
        assert_eq!(
            change.facts.runbook.as_deref(),
            Some("https://wiki.example.com/runbooks/cpu")
        );
        assert_eq!(
            change.arn,
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"
        );
    }

    #[test]
    fn an_alarm_arn_that_is_not_this_alarms_is_not_believed() {
        let mut event: Value = serde_json::from_str(ALARM).unwrap();
        event["resources"] =
            serde_json::json!(["arn:aws:cloudwatch:us-east-1:999999999999:alarm:Other"]);
        let Notification::Alarm(change) = parse(&event.to_string()).unwrap() else {
            panic!("an alarm");
        };
        assert_eq!(
            change.arn,
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"
        );
    }

    #[test]
    fn only_https_links_to_a_host_are_runbooks() {
        assert_eq!(
            runbook_link("  https://wiki.example.com/run?x=1&y=2 ").as_deref(),
            Some("https://wiki.example.com/run?x=1&y=2")
        );
        for bad in [
            "",
            "wiki page",
            "http://wiki.example.com",
            "javascript:alert(1)",
            "https://",
            "https:///etc",
            "https://wiki.example.com/a b",
            "https://evil.example.com|Runbook",
            "https://x.example.com/<!here>",
            "https://x.example.com/\"quoted\"",
            "https://x.example.com/`code`",
            "https://x.example.com/\u{7}",
        ] {
            assert_eq!(runbook_link(bad), None, "{bad:?}");
        }
        let long = format!("https://x.example.com/{}", "a".repeat(RUNBOOK_MAX));
        assert_eq!(runbook_link(&long), None);
        // a description's link ends where the link does
        assert_eq!(
            runbook("see <https://w.example.com/r|the runbook>").as_deref(),
            Some("https://w.example.com/r")
        );
        assert_eq!(runbook("see https:// nothing"), None);
    }

    #[test]
    fn ec2s_documented_event_is_read() {
        let Notification::Instance(change) = parse(EC2).unwrap() else {
            panic!("an instance");
        };
        assert_eq!(change.instance, "i-abcd1111");
        assert_eq!(change.state, "stopped");
    }

    /// What is broken, how, and the error it must give.
    type Case = (&'static str, fn(&mut Value), EventError);

    #[test]
    fn malformed_events_name_what_is_wrong() {
        let mut event: Value = serde_json::from_str(ALARM).unwrap();
        assert!(matches!(parse("{not json"), Err(EventError::Json(_))));
        let cases: [Case; 8] = [
            (
                "a reason that is not text (M10: it was posted empty)",
                |e| e["detail"]["state"]["reason"] = 42.into(),
                EventError::Field("detail.state.reason"),
            ),
            (
                "a description that is not text",
                |e| e["detail"]["configuration"]["description"] = serde_json::json!({"a": 1}),
                EventError::Field("detail.configuration.description"),
            ),
            (
                "reason data that is not text",
                |e| e["detail"]["state"]["reasonData"] = serde_json::json!([1]),
                EventError::Field("detail.state.reasonData"),
            ),
            (
                "no name",
                |e| e["detail"]["alarmName"] = Value::Null,
                EventError::Field("detail.alarmName"),
            ),
            (
                "long name",
                |e| e["detail"]["alarmName"] = "x".repeat(256).into(),
                EventError::Field("detail.alarmName"),
            ),
            (
                "bad state",
                |e| e["detail"]["state"]["value"] = "ON_FIRE".into(),
                EventError::Field("detail.state.value"),
            ),
            (
                "no time",
                |e| e["detail"]["state"]["timestamp"] = "yesterday".into(),
                EventError::Field("detail.state.timestamp"),
            ),
            (
                "no detail",
                |e| {
                    e.as_object_mut().unwrap().remove("detail");
                },
                EventError::Field("detail"),
            ),
        ];
        for (what, break_it, error) in cases {
            let mut broken = event.clone();
            break_it(&mut broken);
            assert_eq!(parse(&broken.to_string()), Err(error), "{what}");
        }
        event["source"] = "aws.s3".into();
        assert!(matches!(
            parse(&event.to_string()),
            Err(EventError::Unsupported { .. })
        ));
    }
}
