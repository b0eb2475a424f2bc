//! `ec2 status <name|id>`: one instance (or each of a name's) in detail.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Instance, MANAGED_TAG, MANAGED_VALUE, Pack, plural};
use crate::packs::aws::format;
use opkit::engine::command::{CommandError, Ctx};
use opkit::mrkdwn;
use opkit::slack::Reply;
use opkit::slack::{Mrkdwn, UserText};
use opkit::timespec::format_duration;

/// Instances `ec2 status` describes in full.
const STATUS_MAX: usize = 5;

pub(super) async fn status(ctx: &mut Ctx<()>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    if ctx.args.len() != 1 {
        return Err(CommandError::usage("give one instance name or id"));
    }
    let target = ctx.args.word(0, "an instance name or id")?.to_string();
    let found = pack.resolve(&target, false).await?;
    if found.is_empty() {
        return Err(CommandError::user(crate::packs::aws::format::plain(
            format!(
                "No instance named or with id `{target}` in {}.",
                pack.site.label
            ),
        )));
    }
    let (shown, more) = format::truncate(found, STATUS_MAX);
    let mut body: Vec<Mrkdwn> = shown.iter().map(|i| describe(i, ctx.now)).collect();
    body.extend(format::and_more(more));
    let count = shown.len() + more;
    Ok(format::reply(
        format::plain(format!(
            "`{target}` in {}: {count} instance{}",
            pack.site.label,
            plural(count)
        )),
        Mrkdwn::join(body, "\n\n"),
    ))
}

/// One instance in detail. Its names and AWS's words are shown as text; the
/// launch time is the bot's own date token (markup: the finding F21, escaped as
/// text, Slack showed the raw `<!date^…>`).
fn describe(i: &Instance, now: DateTime<Utc>) -> Mrkdwn {
    let mut lines = vec![format::plain(format!("*{}* — {}", i.label(), i.state))];
    lines.push(format::plain(format!("{} in {}", i.kind, i.az)));
    if let Some(at) = i.launched {
        let up = (i.state == "running")
            .then(|| UserText::new(format!(", up {}", format_duration(now - at))));
        lines.push(mrkdwn!("launched {}{}", at, up));
    }
    let ips: Vec<String> = [("private", &i.private_ip), ("public", &i.public_ip)]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|ip| format!("{k} {ip}")))
        .collect();
    if !ips.is_empty() {
        lines.push(format::plain(ips.join(", ")));
    }
    if let Some(reason) = &i.reason {
        lines.push(format::plain(format!(
            "reason: {}",
            format::clip(reason, 200)
        )));
    }
    lines.push(format::plain(if i.managed {
        format!("managed by Opkit (`{MANAGED_TAG}={MANAGED_VALUE}`): start/stop/reboot allowed")
    } else {
        format!("not managed by Opkit (no `{MANAGED_TAG}={MANAGED_VALUE}` tag): read-only here")
    }));
    Mrkdwn::join(lines, "\n")
}

#[cfg(test)]
mod tests {
    use super::super::tests::inst;
    use super::*;

    #[test]
    fn status_says_whether_opkit_may_act() {
        let mut i = inst("i-00000001", "web", "running", true);
        i.private_ip = Some("10.0.0.5".into());
        let text = describe(&i, Utc::now());
        assert!(text.starts_with("*web (i-00000001)* — running\nt3.micro in us-east-1a"));
        assert!(text.contains("private 10.0.0.5"));
        assert!(text.contains("start/stop/reboot allowed"));
    }

    #[test]
    fn the_launch_time_is_a_live_date_token_and_aws_text_stays_text() {
        // GIVEN an instance whose name and reason are AWS's text with markup
        let launched = DateTime::from_timestamp(1_796_015_941, 0).unwrap();
        let mut i = inst("i-00000001", "<!channel>", "running", true);
        i.launched = Some(launched);
        i.reason = Some("<@U1> did it".into());
        // WHEN it is described
        let text = describe(&i, launched + chrono::Duration::minutes(25));
        // THEN the date token is markup Slack draws (the finding F21: it was
        // escaped, `&lt;!date^…&gt;`, and shown raw), and the rest is escaped
        assert!(
            text.contains("launched <!date^1796015941^{date_short_pretty} at {time}|2026-11-30 05:19 UTC>, up 25m"),
            "{text}"
        );
        assert!(!text.contains("&lt;!date^"), "{text}");
        assert!(
            text.contains("&lt;!channel&gt;") && text.contains("&lt;@U1&gt;"),
            "{text}"
        );
    }
}
