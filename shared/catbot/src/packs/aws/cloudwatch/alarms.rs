//! `alarms [<state>]` and `alarms prefix <prefix> [<state>]`: alarm listings.

use std::sync::Arc;

use aws_sdk_cloudwatch::types::StateValue;
use chrono::{DateTime, Utc};

use super::{AlarmView, CloudWatchState, MAX_ALARMS, Pack, plural};
use crate::packs::aws::format;
use opkit::engine::command::{CommandError, Ctx};
use opkit::slack::{Mrkdwn, Reply};

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
        other => Err(CommandError::usage(format::plain(format!(
            "`{other}` is not a state: use alarm, ok, insufficient_data or all"
        )))),
    }
}

fn state_label(state: &Option<StateValue>) -> &str {
    state.as_ref().map_or("any state", |s| s.as_str())
}

fn alarm_listing(summary: String, alarms: &[AlarmView], now: DateTime<Utc>) -> Reply {
    let (shown, more) = format::truncate(alarms.to_vec(), MAX_ALARMS);
    let mut lines: Vec<Mrkdwn> = shown.iter().map(|a| a.line(now)).collect();
    lines.extend(format::and_more(more));
    format::reply(format::plain(summary), Mrkdwn::join(lines, "\n"))
}

pub(super) async fn alarms(
    ctx: &mut Ctx<CloudWatchState>,
    pack: Arc<Pack>,
) -> Result<Reply, CommandError> {
    let state = match ctx.args.len() {
        0 => Some(StateValue::Alarm),
        1 => parse_state(ctx.args.word(0, "a state")?)?,
        _ => return Err(CommandError::usage("give at most one state")),
    };
    let found = pack.alarms(state.clone(), None, None).await?;
    let label = state_label(&state);
    if found.is_empty() {
        return Ok(format::reply(
            format::plain(format!("No alarms in {label} in {}.", pack.site.label)),
            "",
        ));
    }
    let summary = format!(
        "{} alarm{} in {label} in {}, newest change first:",
        found.len(),
        plural(found.len()),
        pack.site.label
    );
    Ok(alarm_listing(summary, &found, ctx.now))
}

pub(super) async fn alarms_prefix(
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
            format::plain(format!(
                "No alarms starting with `{prefix}` in {label} in {}.",
                pack.site.label
            )),
            "",
        ));
    }
    let summary = format!(
        "{} alarm{} starting with `{prefix}` in {label} in {}, newest change first:",
        found.len(),
        plural(found.len()),
        pack.site.label
    );
    Ok(alarm_listing(summary, &found, ctx.now))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn an_alarms_line_carries_a_live_date_token_and_its_aws_text_escaped() {
        // GIVEN an alarm whose name and reason are AWS's text with markup
        let since = chrono::DateTime::from_timestamp(1_796_017_442, 0).unwrap();
        let alarm = super::super::AlarmView {
            name: "tag-<!channel>".into(),
            state: "ALARM".into(),
            reason: "Threshold <@U1> crossed".into(),
            since: Some(since),
            metric: None,
            threshold: None,
            composite: false,
        };
        // WHEN it is listed (`alarms`, `alarms all/prefix`, `alarms watched`)
        let line = alarm.line(since + chrono::Duration::seconds(1));
        // THEN Slack gets the bot's date token as markup (the finding F21: it was
        // escaped, and shown raw), the name and reason escaped
        assert_eq!(
            line,
            "• *tag-&lt;!channel&gt;* — ALARM since <!date^1796017442^{date_short_pretty} at {time}|2026-11-30 05:44 UTC> (1s ago)\n    Threshold &lt;@U1&gt; crossed"
        );
    }
}
