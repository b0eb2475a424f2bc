//! CloudWatch's embedded metric format: one JSON object per line, whose `_aws`
//! member tells CloudWatch Logs which of the line's members are metrics and which
//! are their dimensions ("Specification: Embedded metric format", CloudWatch User
//! Guide).
//!
//! A line also carries `level` and `timestamp`, the two keys Lambda's log-level
//! filter reads (members `_aws` does not name are plain properties to CloudWatch):
//! Lambda counts a line without a valid `level` as `INFO` and drops it under a
//! `WARN`, `ERROR` or `FATAL` setting, which would lose the metric with it
//! ("Log-level filtering", Lambda Developer Guide). [`level`] picks the level
//! the function's own setting keeps.

use serde_json::{Map, Value, json};

use super::{Sample, Unit};

/// Lambda's application log levels, least severe first.
const LAMBDA_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// The `level` of the EMF lines: the function's own application log level
/// (`AWS_LAMBDA_LOG_LEVEL`, from `ApplicationLogLevel`), the least severe level
/// Lambda then keeps, so no setting drops a metric and none is reported more
/// severe than it must be; `INFO` where it is unset or not one of Lambda's.
pub fn level(lookup: impl Fn(&str) -> Option<String>) -> &'static str {
    let set = lookup("AWS_LAMBDA_LOG_LEVEL").map(|l| l.trim().to_ascii_uppercase());
    LAMBDA_LEVELS
        .into_iter()
        .find(|l| set.as_deref() == Some(*l))
        .unwrap_or("INFO")
}

/// The EMF line (with its `\n`) for `sample`, taken at `at_ms` (Unix ms), with
/// `level` for Lambda's log filter.
pub(super) fn line(namespace: &str, level: &str, sample: &Sample, at_ms: i64) -> String {
    let unit = match sample.unit {
        Unit::Count => "Count",
        Unit::Milliseconds => "Milliseconds",
    };
    let dimension_names: Vec<&str> = sample.dimensions.iter().map(|(name, _)| *name).collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimension_names],
                "Metrics": [{ "Name": sample.name, "Unit": unit }],
            }],
        }),
    );
    for (name, value) in &sample.dimensions {
        root.insert((*name).into(), Value::String(value.clone()));
    }
    root.insert(sample.name.into(), json!(sample.value));
    root.insert("level".into(), json!(level));
    let timestamp = chrono::DateTime::from_timestamp_millis(at_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    root.insert("timestamp".into(), json!(timestamp));
    let mut text = Value::Object(root).to_string();
    text.push('\n');
    text
}
