//! The question a held request is posted with, and its buttons.

use super::{Pending, actions, short_id};
use crate::engine::command::CommandSpec;
use crate::ids::UserId;
use crate::mrkdwn;
use crate::slack::mrkdwn::{CommandLine, Mrkdwn, UserText};
use crate::slack::{Block, Button, ConfirmDialog, Reply, Visibility};

/// Most beneficiaries an approval prompt mentions one by one; past it, it
/// counts the rest. The prompt is posted in the channel: each mention pings.
pub const MENTIONED_BENEFICIARIES: usize = 5;

/// " nor …" after "not the asker" in an approval prompt: how its handler named
/// who gains ([`Pending::beneficiaries_named`]), else each of them, at most
/// [`MENTIONED_BENEFICIARIES`] mentioned and the rest counted.
fn not_them(pending: &Pending) -> Option<Mrkdwn> {
    if let Some(named) = &pending.beneficiaries_named {
        return Some(mrkdwn!(" nor {}", named.clone()));
    }
    let all = &pending.beneficiaries;
    if all.is_empty() {
        return None;
    }
    let shown = all
        .iter()
        .take(MENTIONED_BENEFICIARIES)
        .map(UserId::mention);
    let more = all.len().saturating_sub(MENTIONED_BENEFICIARIES) + pending.beneficiaries_unlisted;
    let rest = (more > 0).then(|| mrkdwn!(" and {} others who would gain", more));
    Some(mrkdwn!(" nor {}{}", Mrkdwn::join(shown, ", "), rest))
}

/// The question and its buttons.
pub(super) fn prompt(pending: &Pending, command: &CommandSpec, id: &str) -> Reply {
    let until = pending.expires_at;
    let request = &pending.request;
    // Held requests are in canonical form already (see `hold`): in full, on one line.
    let asked = CommandLine::new(&request.text);
    let summary = &pending.summary;
    let button =
        |text: &str, action_id: &str, style: Option<&str>, confirm: Option<ConfirmDialog>| Button {
            text: text.to_string(),
            action_id: action_id.to_string(),
            value: id.to_string(),
            style: style.map(str::to_string),
            confirm,
        };
    let dialog = |verb: &str| ConfirmDialog {
        title: "Are you sure?".into(),
        text: mrkdwn!("{} {}", UserText::new(verb), asked),
        confirm: verb.into(),
        deny: "Back".into(),
    };
    let not_them = not_them(pending);
    let (text, buttons, visibility) = match pending.approvers(command) {
        Some(access) => (
            mrkdwn!(
                "{} asks to run {}. It needs approval by someone with {} (not the asker{}), by {}.\n\
                 {}\n\
                 Without buttons: `approve {}` or `deny {}`.",
                request.caller.user.mention(),
                asked,
                access.describe(),
                not_them,
                until,
                summary,
                UserText::new(short_id(id)),
                UserText::new(short_id(id))
            ),
            vec![
                button(
                    "Approve",
                    actions::APPROVE,
                    Some("primary"),
                    Some(dialog("Approve")),
                ),
                button("Deny", actions::DENY, Some("danger"), None),
            ],
            Visibility::InChannel,
        ),
        None => (
            mrkdwn!(
                "Run {}? Confirm by {}.\n\
                 {}\n\
                 Without buttons: `confirm {}` or `cancel {}`.",
                asked,
                until,
                summary,
                UserText::new(short_id(id)),
                UserText::new(short_id(id))
            ),
            vec![
                button(
                    "Confirm",
                    actions::CONFIRM,
                    Some("danger"),
                    Some(dialog("Run")),
                ),
                button("Cancel", actions::CANCEL, None, None),
            ],
            Visibility::Ephemeral,
        ),
    };
    Reply::text(text.clone())
        .with_visibility(visibility)
        .block(Block::Section { text })
        .block(Block::Actions { buttons })
}
