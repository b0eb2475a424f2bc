//! `ec2 status <name|id>`: one instance (or each of a name's) in detail.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Instance, MANAGED_TAG, MANAGED_VALUE, Pack, plural};
use crate::packs::aws::format;
use opkit::engine::command::{CommandError, Ctx};
use opkit::slack::Mrkdwn;
use opkit::slack::Reply;
use opkit::timespec::{format_duration, format_time};

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
    let mut body: Vec<Mrkdwn> = shown
        .iter()
        .map(|i| format::plain(describe(i, ctx.now)))
        .collect();
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

fn describe(i: &Instance, now: DateTime<Utc>) -> String {
    let mut lines = vec![format!("*{}* — {}", i.label(), i.state)];
    lines.push(format!("{} in {}", i.kind, i.az));
    if let Some(at) = i.launched {
        let up = if i.state == "running" {
            format!(", up {}", format_duration(now - at))
        } else {
            String::new()
        };
        lines.push(format!("launched {}{up}", format_time(at)));
    }
    let ips: Vec<String> = [("private", &i.private_ip), ("public", &i.public_ip)]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|ip| format!("{k} {ip}")))
        .collect();
    if !ips.is_empty() {
        lines.push(ips.join(", "));
    }
    if let Some(reason) = &i.reason {
        lines.push(format!("reason: {}", format::clip(reason, 200)));
    }
    lines.push(if i.managed {
        format!("managed by Opkit (`{MANAGED_TAG}={MANAGED_VALUE}`): start/stop/reboot allowed")
    } else {
        format!("not managed by Opkit (no `{MANAGED_TAG}={MANAGED_VALUE}` tag): read-only here")
    });
    lines.join("\n")
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
}
