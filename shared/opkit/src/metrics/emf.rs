//! CloudWatch's embedded metric format: one JSON object per line, whose `_aws`
//! member tells CloudWatch Logs which of the line's members are metrics and which
//! are their dimensions ("Specification: Embedded metric format", CloudWatch User
//! Guide).

use serde_json::{Map, Value, json};

use super::{Sample, Unit};

/// The EMF line (with its `\n`) for `sample`, taken at `at_ms` (Unix ms).
pub(super) fn line(namespace: &str, sample: &Sample, at_ms: i64) -> String {
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
    let mut text = Value::Object(root).to_string();
    text.push('\n');
    text
}
