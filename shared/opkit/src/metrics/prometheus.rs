//! The registry behind `opkit serve`'s `GET /metrics`: counters and histograms in
//! Prometheus' text exposition format (version 0.0.4), every name prefixed
//! `opkit_`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use super::{Sample, Unit};

/// The content type of [`Registry::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the duration histograms' buckets: from a fast ack to
/// a slow AWS call.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    /// Observations at or below each bound of [`BUCKETS`] (not cumulative).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct State {
    counters: BTreeMap<(&'static str, Labels), f64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// Counters and histograms of the samples recorded in this process.
#[derive(Default)]
pub struct Registry(Mutex<State>);

impl Registry {
    /// Adds `sample`: a count to its counter, a duration to its histogram.
    pub fn record(&self, sample: &Sample) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (sample.name, sample.dimensions.clone());
        match sample.unit {
            Unit::Count => *state.counters.entry(key).or_default() += sample.value,
            Unit::Milliseconds => {
                let seconds = sample.value / 1000.0;
                let h = state.histograms.entry(key).or_default();
                if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
                    h.buckets[i] += 1;
                }
                h.count += 1;
                h.sum += seconds;
            }
        }
    }

    /// Everything recorded, in Prometheus' text format.
    pub fn render(&self) -> String {
        let state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), value) in &state.counters {
            let metric = format!("opkit_{}_total", snake(name));
            if *name != last {
                let _ = writeln!(out, "# TYPE {metric} counter");
                last = name;
            }
            let _ = writeln!(out, "{metric}{} {value}", label_text(labels, None));
        }
        last = "";
        for ((name, labels), h) in &state.histograms {
            let metric = format!("opkit_{}_seconds", snake(name));
            if *name != last {
                let _ = writeln!(out, "# TYPE {metric} histogram");
                last = name;
            }
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let le = bound.to_string();
                let _ = writeln!(
                    out,
                    "{metric}_bucket{} {cumulative}",
                    label_text(labels, Some(&le))
                );
            }
            let _ = writeln!(
                out,
                "{metric}_bucket{} {}",
                label_text(labels, Some("+Inf")),
                h.count
            );
            let _ = writeln!(out, "{metric}_sum{} {}", label_text(labels, None), h.sum);
            let _ = writeln!(
                out,
                "{metric}_count{} {}",
                label_text(labels, None),
                h.count
            );
        }
        out
    }
}

/// `QueueToReply` → `queue_to_reply`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `{command="queue join",outcome="ran"}` (label names in snake case, values
/// escaped as the format requires), with `le` for a bucket; empty when no label.
fn label_text(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{}=\"{}\"", snake(name), escape(value)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
