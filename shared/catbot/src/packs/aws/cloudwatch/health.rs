//! `health`: alarm counts by state, at a glance.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{AlarmView, CloudWatchState, Pack, plural};
use crate::packs::aws::format;
use opkit::engine::command::{CommandError, Ctx};
use opkit::slack::Reply;

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

pub(super) async fn health(
    ctx: &mut Ctx<CloudWatchState>,
    pack: Arc<Pack>,
) -> Result<Reply, CommandError> {
    if !ctx.args.is_empty() {
        return Err(CommandError::usage("`health` takes no arguments"));
    }
    let all = pack.alarms(None, None, None).await?;
    let (summary, body) = health_report(&all, &pack.site.label);
    // Alarm names and the region are AWS's text.
    Ok(format::reply(format::plain(summary), format::plain(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
