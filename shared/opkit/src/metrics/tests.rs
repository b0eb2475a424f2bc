use serde_json::Value;

use super::*;

fn sample(name: &'static str, unit: Unit, value: f64, dims: &[(&'static str, &str)]) -> Sample {
    Sample {
        name,
        unit,
        value,
        dimensions: dims.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    }
}

/// Checks `line` against the EMF specification's rules and returns it parsed.
pub(crate) fn assert_emf(line: &str) -> Value {
    assert!(
        line.ends_with('\n') && !line[..line.len() - 1].contains('\n'),
        "one line: {line:?}"
    );
    let doc: Value = serde_json::from_str(line).expect("an EMF line is a JSON object");
    let aws = &doc["_aws"];
    assert!(aws["Timestamp"].as_i64().is_some_and(|t| t > 0), "{line}");
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics");
    assert!(!directives.is_empty());
    for directive in directives {
        let namespace = directive["Namespace"].as_str().expect("Namespace");
        assert!(!namespace.is_empty() && namespace.len() <= 255);
        for set in directive["Dimensions"].as_array().expect("Dimensions") {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(set.len() <= 30, "at most 30 dimensions");
            for name in set {
                let name = name.as_str().expect("dimension names are strings");
                assert!(
                    doc[name].is_string(),
                    "dimension {name} must be a string member"
                );
            }
        }
        for metric in directive["Metrics"].as_array().expect("Metrics") {
            let name = metric["Name"].as_str().expect("Name");
            assert!(
                doc[name].is_number(),
                "metric {name} must be a number member"
            );
            let unit = metric["Unit"].as_str().unwrap_or("None");
            assert!(["Count", "Milliseconds", "None"].contains(&unit), "{unit}");
        }
    }
    doc
}

#[test]
fn an_emf_line_names_its_metric_and_dimensions_and_carries_their_values() {
    // GIVEN a command outcome
    let s = sample(
        "Commands",
        Unit::Count,
        1.0,
        &[("Command", "queue join"), ("Outcome", "ran")],
    );
    // WHEN it is written as EMF
    let line = emf::line("Opkit/test", "INFO", &s, 1_764_400_000_000);
    // THEN CloudWatch can read it as one Count metric with two dimensions
    let doc = assert_emf(&line);
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Opkit/test");
    assert_eq!(
        directive["Dimensions"],
        serde_json::json!([["Command", "Outcome"]])
    );
    assert_eq!(
        directive["Metrics"],
        serde_json::json!([{"Name": "Commands", "Unit": "Count"}])
    );
    assert_eq!(doc["Command"], "queue join");
    assert_eq!(doc["Commands"], 1.0);
    assert_eq!(doc["_aws"]["Timestamp"], 1_764_400_000_000_i64);
    // A metric without dimensions still has one (empty) dimension set.
    let doc = assert_emf(&emf::line(
        "Opkit",
        "INFO",
        &sample("QueueToReply", Unit::Milliseconds, 12.5, &[]),
        1,
    ));
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([[]])
    );
    assert_eq!(doc["QueueToReply"], 12.5);
}

#[test]
fn an_emf_line_survives_every_lambda_log_level() {
    // Lambda keeps a line at the set level or more severe; one without a valid
    // `level` counts as INFO (Lambda Developer Guide, "Log-level filtering").
    let kept = |set: &str, line_level: &str| {
        let order = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
        let at = |l: &str| order.iter().position(|o| *o == l).unwrap_or(2);
        at(line_level) >= at(set)
    };
    let s = sample("Commands", Unit::Count, 1.0, &[("Outcome", "ran")]);
    for set in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "warn"] {
        // GIVEN the function's ApplicationLogLevel
        let level = emf_level(|name| (name == "AWS_LAMBDA_LOG_LEVEL").then(|| set.to_string()));
        // WHEN a metric is written
        let doc = assert_emf(&emf::line("Opkit", level, &s, 1_764_400_000_123));
        // THEN its line carries a level Lambda keeps at that setting, and a
        // valid RFC 3339 timestamp
        let line_level = doc["level"].as_str().unwrap();
        assert!(kept(&set.to_uppercase(), line_level), "{set}: {doc}");
        assert_eq!(doc["timestamp"], "2025-11-29T07:06:40.123Z");
    }
    // Unset or not one of Lambda's levels: INFO, what Lambda assumes anyway.
    assert_eq!(emf_level(|_| None), "INFO");
    assert_eq!(emf_level(|_| Some("LOUD".into())), "INFO");
}

#[test]
fn a_dimension_value_is_data_even_when_it_looks_like_json() {
    let s = sample(
        "Commands",
        Unit::Count,
        1.0,
        &[("Command", "x\",\"_aws\":{}\n"), ("Outcome", "ran")],
    );
    let doc = assert_emf(&emf::line("Opkit", "INFO", &s, 1));
    assert_eq!(doc["Command"], "x\",\"_aws\":{}\n");
}

#[test]
fn outcomes_are_counted_under_short_names_and_requests_not_at_all() {
    use crate::ids::UserId;
    let by = UserId::parse("U1").unwrap();
    let decided = |d: &str| Outcome::Decided {
        decision: d.into(),
        by: by.clone(),
    };
    assert_eq!(outcome_name(&Outcome::Requested), None);
    assert_eq!(
        outcome_name(&Outcome::System {
            action: "ended".into()
        }),
        None
    );
    assert_eq!(outcome_name(&Outcome::Succeeded), Some("ran"));
    assert_eq!(
        outcome_name(&Outcome::Denied {
            needed: "admin".into()
        }),
        Some("denied")
    );
    assert_eq!(
        outcome_name(&Outcome::Failed { error: "x".into() }),
        Some("failed")
    );
    assert_eq!(outcome_name(&decided("confirmed")), Some("confirmed"));
    assert_eq!(outcome_name(&decided("approved")), Some("approved"));
    assert_eq!(outcome_name(&decided("denied")), Some("rejected"));
    assert_eq!(outcome_name(&decided("cancelled")), Some("cancelled"));
}

#[test]
fn the_registry_renders_prometheus_text_with_opkit_names() {
    // GIVEN two commands and two acks recorded
    let registry = Registry::default();
    let ran = sample(
        "Commands",
        Unit::Count,
        1.0,
        &[("Command", "queue join"), ("Outcome", "ran")],
    );
    registry.record(&ran);
    registry.record(&ran);
    registry.record(&sample(
        "AckLatency",
        Unit::Milliseconds,
        3.0,
        &[("Route", "commands")],
    ));
    registry.record(&sample(
        "AckLatency",
        Unit::Milliseconds,
        40.0,
        &[("Route", "commands")],
    ));
    registry.record(&sample(
        "SlackPostFailures",
        Unit::Count,
        1.0,
        &[("Via", "say \"hi\"")],
    ));
    // WHEN rendered
    let text = registry.render();
    // THEN counters and cumulative histogram buckets, in seconds
    assert!(
        text.contains("# TYPE opkit_commands_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("opkit_commands_total{command=\"queue join\",outcome=\"ran\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE opkit_ack_latency_seconds histogram\n"),
        "{text}"
    );
    assert!(
        text.contains("opkit_ack_latency_seconds_bucket{route=\"commands\",le=\"0.005\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("opkit_ack_latency_seconds_bucket{route=\"commands\",le=\"0.05\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("opkit_ack_latency_seconds_bucket{route=\"commands\",le=\"+Inf\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("opkit_ack_latency_seconds_count{route=\"commands\"} 2\n"),
        "{text}"
    );
    let sum = text
        .lines()
        .find_map(|l| l.strip_prefix("opkit_ack_latency_seconds_sum{route=\"commands\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("the histogram's sum");
    assert!((sum - 0.043).abs() < 1e-9, "{sum}");
    assert!(
        text.contains("opkit_slack_post_failures_total{via=\"say \\\"hi\\\"\"} 1\n"),
        "{text}"
    );
    // Every sample line is `name{labels} value`, every name prefixed.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("opkit_"), "{line}");
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}
