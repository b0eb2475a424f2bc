//! `ec2 start|stop|reboot <name|id> [all]`: the guards (`opkit:managed=true`, one
//! name one instance unless `all`, states the action applies to), the audit record
//! written first, the call, and waiting for the new state.

use std::sync::Arc;

use super::{Instance, MANAGED_TAG, MANAGED_VALUE, Pack, filter, plural};
use crate::packs::aws::format::{self, sdk_error};
use opkit::audit::Outcome;
use opkit::engine::bot::Request;
use opkit::engine::command::{CommandError, Ctx};
use opkit::slack::Reply;

/// Most instances one command acts on.
const ACT_MAX: usize = 20;

/// What start/stop/reboot do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// StartInstances.
    Start,
    /// StopInstances.
    Stop,
    /// RebootInstances.
    Reboot,
}

impl Action {
    pub(super) fn verb(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Reboot => "reboot",
        }
    }

    /// The command's name: `ec2 start`, `ec2 stop`, `ec2 reboot`.
    pub(super) fn command(self) -> &'static str {
        match self {
            Action::Start => "ec2 start",
            Action::Stop => "ec2 stop",
            Action::Reboot => "ec2 reboot",
        }
    }

    fn ing(self) -> &'static str {
        match self {
            Action::Start => "Starting",
            Action::Stop => "Stopping",
            Action::Reboot => "Rebooting",
        }
    }

    pub(super) fn description(self) -> &'static str {
        match self {
            Action::Start => "Start EC2 instances tagged opkit:managed=true",
            Action::Stop => "Stop EC2 instances tagged opkit:managed=true",
            Action::Reboot => "Reboot EC2 instances tagged opkit:managed=true",
        }
    }

    /// Whether an instance in `state` can be asked to do it (asking a running
    /// instance to start, or a stopped one to stop, is harmless and reported).
    fn applies_to(self, state: &str) -> bool {
        match self {
            Action::Start => matches!(state, "stopped" | "running" | "pending"),
            Action::Stop => matches!(state, "running" | "pending" | "stopped" | "stopping"),
            Action::Reboot => state == "running",
        }
    }

    /// The states EC2 announces on the way (its "EC2 Instance State-change
    /// Notification" events); a reboot changes no state, so none.
    fn announced_states(self) -> &'static [&'static str] {
        match self {
            Action::Start => &["pending", "running"],
            Action::Stop => &["stopping", "stopped"],
            Action::Reboot => &[],
        }
    }

    /// The state it ends in, if it changes the state.
    fn end_state(self) -> Option<&'static str> {
        match self {
            Action::Start => Some("running"),
            Action::Stop => Some("stopped"),
            Action::Reboot => None,
        }
    }
}

/// Decides which instances `action` may touch, or why it must do nothing.
/// `target` is what the user typed; `all` whether they said `all`.
pub fn plan(
    action: Action,
    target: &str,
    found: Vec<Instance>,
    all: bool,
    region: &str,
) -> Result<Vec<Instance>, String> {
    let verb = action.verb();
    if found.is_empty() {
        return Err(format!(
            "No instance named or with id `{target}` in {region} (terminated ones are not counted)."
        ));
    }
    let listing = |list: &[Instance]| {
        list.iter()
            .map(|i| format!("• {} — {}", i.label(), i.state))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if found.len() > 1 && !all {
        return Err(format!(
            "`{target}` matches {} instances in {region}; I changed nothing. \
             Say `ec2 {verb} {target} all` to {verb} every one, or use an id:\n{}",
            found.len(),
            listing(&found)
        ));
    }
    if found.len() > ACT_MAX {
        return Err(format!(
            "`{target}` matches {} instances; I act on at most {ACT_MAX} at once. Nothing was changed.",
            found.len()
        ));
    }
    let unmanaged: Vec<Instance> = found.iter().filter(|i| !i.managed).cloned().collect();
    if !unmanaged.is_empty() {
        return Err(format!(
            "I only {verb} instances tagged `{MANAGED_TAG}={MANAGED_VALUE}`, and these are not; \
             nothing was changed:\n{}",
            listing(&unmanaged)
        ));
    }
    let wrong: Vec<Instance> = found
        .iter()
        .filter(|i| !action.applies_to(&i.state))
        .cloned()
        .collect();
    if !wrong.is_empty() {
        return Err(format!(
            "I cannot {verb} an instance in these states; nothing was changed:\n{}",
            listing(&wrong)
        ));
    }
    // Stopping asks for a confirmation: never for instances it would not change.
    if action == Action::Stop
        && found
            .iter()
            .all(|i| matches!(i.state.as_str(), "stopped" | "stopping"))
    {
        return Err(format!(
            "Nothing to stop; nothing was changed:\n{}",
            listing(&found)
        ));
    }
    Ok(found)
}

/// Splits `<name|id> [all]`.
fn target_and_all(ctx: &Ctx<()>) -> Result<(String, bool), CommandError> {
    let args = &ctx.args;
    let target = args.word(0, "an instance name or id")?.to_string();
    match args.len() {
        1 => Ok((target, false)),
        2 if args.word(1, "`all`")?.eq_ignore_ascii_case("all") => Ok((target, true)),
        _ => Err(CommandError::usage(
            "give one instance name or id (quote a name with spaces), then optionally `all`",
        )),
    }
}

pub(super) async fn act_on(
    ctx: &mut Ctx<()>,
    pack: Arc<Pack>,
    action: Action,
) -> Result<Reply, CommandError> {
    let (target, all) = target_and_all(ctx)?;
    let found = pack.resolve(&target, true).await?;
    let targets =
        plan(action, &target, found, all, &pack.site.label).map_err(CommandError::user_text)?;
    let ids: Vec<String> = targets.iter().map(|i| i.id.clone()).collect();
    let verb = action.verb();
    let labels: Vec<String> = targets.iter().map(Instance::label).collect();
    // A confirmed request acts on the instances its prompt named, or on none:
    // the name may match others by the time of the click.
    ctx.bind("the instances", labels.join(", "))?;
    // Instance names and the region are AWS's text.
    ctx.confirm(format::plain(format!(
        "It would {verb} {} in {}.",
        labels.join(", "),
        pack.site.label
    )))?;

    // The ids go to the audit trail before anything changes, with this command's
    // correlation id; the bot then records whether the command succeeded.
    let request = Request {
        correlation_id: ctx.correlation_id,
        caller: ctx.caller.clone(),
        text: format!("ec2 {verb} {}", ctx.args.rest(0)),
    };
    let what = format!("ec2 {verb} {} in {}", ids.join(", "), pack.site.label);
    ctx.bot
        .audit(
            &request,
            Some(&format!("ec2 {verb}")),
            Outcome::System { action: what },
        )
        .await;

    // Their state-change events are Opkit's own doing, not news for the channels
    // that hear of managed instances (the reply says it already).
    let moving: Vec<String> = targets
        .iter()
        .filter(|t| action.end_state() != Some(t.state.as_str()))
        .map(|t| t.id.clone())
        .collect();
    crate::packs::notify::expect_own_changes(
        &ctx.bot,
        pack.site.account_id.as_deref(),
        &pack.site.region,
        &moving,
        action.announced_states(),
        &ctx.caller.user,
    )
    .await;

    let client = &pack.client;
    let action_name = format!("{verb} instances");
    let previous: Vec<(String, String)> = match action {
        Action::Start => {
            let out = client
                .start_instances()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(|e| sdk_error(&e, "EC2", &action_name, &pack.site.label))?;
            transitions(out.starting_instances())
        }
        Action::Stop => {
            let out = client
                .stop_instances()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(|e| sdk_error(&e, "EC2", &action_name, &pack.site.label))?;
            transitions(out.stopping_instances())
        }
        Action::Reboot => {
            client
                .reboot_instances()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(|e| sdk_error(&e, "EC2", &action_name, &pack.site.label))?;
            Vec::new()
        }
    };

    let now_states = match action.end_state() {
        Some(end) => pack.settle(&ids, end).await?,
        None => targets.clone(),
    };
    let mut lines = Vec::new();
    let mut pending = 0;
    for t in &targets {
        let before = previous
            .iter()
            .find(|(id, _)| *id == t.id)
            .map_or(t.state.as_str(), |(_, s)| s.as_str());
        let now = now_states
            .iter()
            .find(|i| i.id == t.id)
            .map_or("unknown", |i| i.state.as_str());
        lines.push(match action.end_state() {
            None => format!("• {}: reboot requested ({now})", t.label()),
            Some(end) if before == end => format!("• {}: was already {end}", t.label()),
            Some(end) if now == end => format!("• {}: {before} → {now}", t.label()),
            Some(_) => {
                pending += 1;
                format!("• {}: {before} → {now}, still in progress", t.label())
            }
        });
    }
    if pending > 0 {
        lines.push(format!(
            "_`ec2 status {target}` shows when {} done._",
            if pending == 1 { "it is" } else { "they are" }
        ));
    }
    // Names, ids and states are AWS's text; the asker a mention.
    Ok(format::reply(
        opkit::mrkdwn!(
            "{} for {}:",
            format::plain(format!(
                "{} {} instance{} in {}",
                action.ing(),
                targets.len(),
                plural(targets.len()),
                pack.site.label
            )),
            ctx.caller.user.mention()
        ),
        format::plain_lines(lines),
    ))
}

fn transitions(changes: &[aws_sdk_ec2::types::InstanceStateChange]) -> Vec<(String, String)> {
    changes
        .iter()
        .filter_map(|c| {
            let id = c.instance_id()?.to_string();
            let before = c.previous_state()?.name()?.as_str().to_string();
            Some((id, before))
        })
        .collect()
}

impl Pack {
    /// Looks at `ids` until all are in `end` or the settle time is up (at least
    /// once, never sleeping when the settle time is zero).
    async fn settle(&self, ids: &[String], end: &str) -> Result<Vec<Instance>, CommandError> {
        let deadline = tokio::time::Instant::now() + self.opts.settle;
        loop {
            let now = self
                .describe(vec![filter("instance-id", ids)], "describe instances")
                .await?;
            let done = now.iter().all(|i| i.state == end);
            if done || tokio::time::Instant::now() + self.opts.poll_every > deadline {
                return Ok(now);
            }
            tokio::time::sleep(self.opts.poll_every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::inst;
    use super::*;

    #[test]
    fn a_name_matching_several_does_nothing_without_all() {
        let found = vec![
            inst("i-00000001", "web", "running", true),
            inst("i-00000002", "web", "running", true),
        ];
        let err = plan(Action::Stop, "web", found.clone(), false, "eu-west-1").unwrap_err();
        assert!(err.starts_with("`web` matches 2 instances in eu-west-1; I changed nothing."));
        assert!(err.contains("`ec2 stop web all`"), "{err}");
        assert!(err.contains("• web (i-00000002) — running"), "{err}");
        assert_eq!(
            plan(Action::Stop, "web", found, true, "r").unwrap().len(),
            2
        );
    }

    #[test]
    fn untagged_instances_or_wrong_states_refuse_the_whole_request() {
        let mixed = vec![
            inst("i-00000001", "web", "running", true),
            inst("i-00000002", "web", "running", false),
        ];
        let err = plan(Action::Stop, "web", mixed, true, "r").unwrap_err();
        assert!(err.contains("tagged `opkit:managed=true`"), "{err}");
        assert!(
            err.contains("i-00000002") && !err.contains("i-00000001"),
            "{err}"
        );
        let stopped = vec![inst("i-00000001", "db", "stopped", true)];
        let err = plan(Action::Reboot, "db", stopped.clone(), false, "r").unwrap_err();
        assert!(
            err.starts_with("I cannot reboot an instance in these states"),
            "{err}"
        );
        assert!(plan(Action::Start, "db", stopped.clone(), false, "r").is_ok());
        let err = plan(Action::Stop, "db", stopped, false, "r").unwrap_err();
        assert_eq!(
            err,
            "Nothing to stop; nothing was changed:\n• db (i-00000001) — stopped"
        );
        let err = plan(Action::Start, "nope", vec![], false, "ap-south-1").unwrap_err();
        assert!(err.starts_with("No instance named or with id `nope` in ap-south-1"));
    }
}
