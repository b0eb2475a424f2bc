//! Confirmation and two-person approval: Opkit's one-off handlers, the Slack way.
//!
//! A gated command does not run when asked. The bot keeps a *pending request*
//! (in the built-in `opkit-pending` script state, saved with the same optimistic
//! version check as any state) and answers with buttons. A click comes back as an
//! interaction job, and [`Bot::decide`] settles it:
//!
//! ```text
//! confirm   asker or anyone allowed to run it → runs, as the clicker
//! cancel    the same people                   → nothing runs
//! approve   holds the approval role, and is not the asker → runs, as the asker
//! deny      holds the approval role (or is the asker, withdrawing) → nothing runs
//! ```
//!
//! A pending request is used once: the click that removes it wins, a second click
//! (or a replayed payload) finds nothing and changes nothing. It expires after ten
//! minutes. Every step is in the audit trail under the request's correlation id.
//!
//! A held request is kept, shown and run in its canonical form
//! ([`crate::text::canonical`]): every token as parsed, in full, on one line. A
//! prompt cannot be made to show a line the bot did not write, nor hide an
//! argument behind padding; a request too long to show in full
//! ([`PROMPT_MAX`]) is refused rather than cut.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::Outcome;
use crate::engine::bot::{Bot, Request};
use crate::engine::command::{Caller, CommandError, CommandSpec, Gate};
use crate::engine::registry::Resolution;
use crate::slack::{Block, Button, ConfirmDialog, Reply, Visibility};
use crate::telemetry::ErrorChain;
use crate::text::{canonical, tokenize};
use crate::timespec::format_time;

/// The script whose state holds pending requests.
pub const PENDING_SCRIPT: &str = "opkit-pending";
/// How long a pending request waits for its click.
pub const PENDING_FOR: Duration = Duration::minutes(10);

/// The longest request, in characters, that a confirmation or approval prompt
/// shows; a longer one is refused, never cut. It keeps the whole request inside
/// the "are you sure?" dialog, whose text Slack caps at 300 characters (Block Kit
/// reference, "Confirmation dialog object"), with the verb before it.
pub const PROMPT_MAX: usize = 250;

/// Button action ids, as they come back in interactions.
pub mod actions {
    /// Run the confirmed command.
    pub const CONFIRM: &str = "opkit:confirm";
    /// Drop it.
    pub const CANCEL: &str = "opkit:cancel";
    /// Approve someone else's request.
    pub const APPROVE: &str = "opkit:approve";
    /// Refuse it.
    pub const DENY: &str = "opkit:deny";
}

/// What a click says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Confirm.
    Confirm,
    /// Cancel.
    Cancel,
    /// Approve.
    Approve,
    /// Deny.
    Deny,
}

impl Decision {
    /// The decision a button's action id stands for; `None` for ids not ours.
    pub fn from_action(action_id: &str) -> Option<Self> {
        match action_id {
            actions::CONFIRM => Some(Decision::Confirm),
            actions::CANCEL => Some(Decision::Cancel),
            actions::APPROVE => Some(Decision::Approve),
            actions::DENY => Some(Decision::Deny),
            _ => None,
        }
    }

    fn past_tense(self) -> &'static str {
        match self {
            Decision::Confirm => "confirmed",
            Decision::Cancel => "cancelled",
            Decision::Approve => "approved",
            Decision::Deny => "denied",
        }
    }
}

/// A request waiting for its click.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The request as asked (its correlation id links the audit trail).
    pub request: Request,
    /// The command's name.
    pub command: String,
    /// Whether it waits for a confirmation or an approval.
    pub approval: bool,
    /// When it stops waiting.
    pub expires_at: DateTime<Utc>,
}

/// The built-in script state: pending requests by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingState {
    /// Pending requests by id.
    #[serde(default)]
    pub requests: BTreeMap<String, Pending>,
}

/// How a click went, before anything runs.
enum Settled {
    /// Run the request as this caller.
    Run(Pending, Caller),
    /// Nothing runs; replace the buttons with this.
    Closed(Pending, String),
    /// Nothing changes; tell the clicker only.
    Refused(String),
}

impl Bot {
    /// Keeps a gated request pending and answers with its buttons.
    pub(crate) async fn hold(&self, request: &Request, command: &CommandSpec) -> Reply {
        let now = self.now();
        let id = request.correlation_id.simple().to_string();
        let approval = matches!(command.gate, Gate::Approval(_));
        // The prompt shows the request as parsed, in full, and that is what runs:
        // padding and line breaks cannot push an argument out of view. What cannot
        // be shown in full is refused, never cut.
        let shown = canonical(&tokenize(&request.text));
        let length = shown.chars().count();
        if length > PROMPT_MAX {
            let what = if approval { "approval" } else { "confirmation" };
            return self
                .failed(
                    request,
                    Some(command.name.as_str()),
                    CommandError::user(format!(
                        "This request is too long to show in full for {what} ({length} \
                         characters; at most {PROMPT_MAX}), so nothing was held or run. \
                         Shorten it."
                    )),
                )
                .await;
        }
        let request = &Request {
            text: shown,
            ..request.clone()
        };
        let pending = Pending {
            request: request.clone(),
            command: command.name.clone(),
            approval,
            expires_at: now + PENDING_FOR,
        };
        let saved = self
            .update_state(PENDING_SCRIPT, true, |state| {
                let pending = pending.clone();
                let id = id.clone();
                Box::pin(async move {
                    let mut state = pending_state(state)?;
                    state.requests.retain(|_, p| p.expires_at > now);
                    state.requests.insert(id, pending);
                    Ok(((), Some(to_value(&state)?)))
                })
            })
            .await;
        let name = Some(command.name.as_str());
        if let Err(e) = saved {
            return self.failed(request, name, e).await;
        }
        let awaiting = match &command.gate {
            Gate::Approval(access) => format!("approval by {}", access.describe()),
            _ => "confirmation".to_string(),
        };
        self.audit(
            request,
            name,
            Outcome::Held {
                awaiting: awaiting.clone(),
            },
        )
        .await;
        prompt(request, command, &id, &pending.expires_at)
    }

    /// Settles a click on a pending request's button. Returns the reply for the
    /// interaction's `response_url`: replacing the buttons with the outcome, or,
    /// when the click changes nothing, an ephemeral note for the clicker only.
    pub async fn decide(&self, clicker: &Caller, pending_id: &str, decision: Decision) -> Reply {
        let now = self.now();
        let settled = self
            .update_state(PENDING_SCRIPT, true, |state| {
                Box::pin(self.settle(state, clicker, pending_id, decision, now))
            })
            .await;
        let settled = match settled {
            Ok(settled) => settled,
            Err(e) => {
                tracing::error!(error = %ErrorChain(&e), pending_id, "could not settle a pending request");
                return Reply::text("Sorry, I could not record that click; please try again.");
            }
        };
        match settled {
            Settled::Refused(why) => Reply::text(why),
            Settled::Closed(pending, text) => {
                let outcome = Outcome::Decided {
                    decision: decision.past_tense().to_string(),
                    by: clicker.user.clone(),
                };
                self.audit(&pending.request, Some(&pending.command), outcome)
                    .await;
                Reply::text(text).replacing()
            }
            Settled::Run(pending, runner) => {
                self.run_decided(pending, runner, clicker, decision).await
            }
        }
    }

    /// The decision rules, applied to the stored pending requests. Only a click
    /// that closes a request changes the state (and so wins the race to it).
    async fn settle(
        &self,
        state: Option<Value>,
        clicker: &Caller,
        pending_id: &str,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<(Settled, Option<Value>), CommandError> {
        let mut state = pending_state(state)?;
        let Some(pending) = state.requests.get(pending_id).cloned() else {
            return Ok((
                Settled::Refused("This request was already handled.".into()),
                None,
            ));
        };
        let asker = &pending.request.caller.user;
        let mine = &clicker.user == asker;
        let close = |state: &mut PendingState, settled: Settled| {
            state.requests.remove(pending_id);
            Ok((settled, Some(to_value(state)?)))
        };
        if pending.expires_at <= now {
            let text = format!(
                "This request expired at {}; nothing was run.",
                format_time(pending.expires_at)
            );
            return close(&mut state, Settled::Closed(pending, text));
        }
        let command = self.registry().find(&pending.command).cloned();
        let Some(command) = command else {
            let text = format!("`{}` no longer exists; nothing was run.", pending.command);
            return close(&mut state, Settled::Closed(pending, text));
        };
        let approvers = match &command.gate {
            Gate::Approval(access) => access.clone(),
            _ => command.access.clone(),
        };
        let (allowed, why) = match (decision, pending.approval) {
            (Decision::Confirm | Decision::Cancel, false) => (
                mine || self.allows(&clicker.user, &command.access).await?,
                format!(
                    "You cannot confirm this: it needs {}.",
                    command.access.describe()
                ),
            ),
            (Decision::Approve, true) if mine => {
                (false, "You cannot approve your own request.".into())
            }
            (Decision::Approve, true) => (
                self.allows(&clicker.user, &approvers).await?,
                format!(
                    "You cannot approve this: it needs {}.",
                    approvers.describe()
                ),
            ),
            (Decision::Deny, true) => (
                mine || self.allows(&clicker.user, &approvers).await?,
                format!("You cannot deny this: it needs {}.", approvers.describe()),
            ),
            _ => (false, "That button does not belong to this request.".into()),
        };
        if !allowed {
            return Ok((Settled::Refused(why), None));
        }
        let settled = match decision {
            Decision::Confirm => Settled::Run(pending, clicker.clone()),
            Decision::Approve => {
                let asker = pending.request.caller.clone();
                Settled::Run(pending, asker)
            }
            Decision::Cancel | Decision::Deny => {
                let verb = if mine {
                    "withdrew"
                } else {
                    decision.past_tense()
                };
                let text = format!(
                    "{} {verb} `{}`; nothing was run.",
                    clicker.user.mention(),
                    pending.request.text
                );
                Settled::Closed(pending, text)
            }
        };
        close(&mut state, settled)
    }

    /// Runs a confirmed or approved request: the runner is authorized again (a
    /// grant may have ended while it waited), and the outcome replaces the buttons.
    async fn run_decided(
        &self,
        pending: Pending,
        runner: Caller,
        clicker: &Caller,
        decision: Decision,
    ) -> Reply {
        let request = Request {
            caller: runner,
            ..pending.request.clone()
        };
        let outcome = Outcome::Decided {
            decision: decision.past_tense().to_string(),
            by: clicker.user.clone(),
        };
        self.audit(&request, Some(&pending.command), outcome).await;
        let tokens = tokenize(&request.text);
        let Resolution::Matched { command, args } = self.registry().resolve(&tokens) else {
            return Reply::text(format!(
                "`{}` no longer exists; nothing was run.",
                request.text
            ))
            .replacing();
        };
        let decision_line = format!(
            "{} {} `{}` at {}.",
            clicker.user.mention(),
            decision.past_tense(),
            request.text,
            format_time(self.now())
        );
        match self.authorize(&request.caller.user, &command).await {
            Ok(d) if d.allowed => {}
            Ok(_) => {
                let text = format!(
                    "{decision_line}\nBut {} may no longer run it (it needs {}); nothing was run.",
                    request.caller.user.mention(),
                    command.access.describe()
                );
                return Reply::text(text).replacing();
            }
            Err(e) => {
                return self
                    .failed(&request, Some(&command.name), e.into())
                    .await
                    .replacing();
            }
        }
        let mut reply = self.run_authorized(&request, &command, args).await;
        reply.text = format!("{decision_line}\n{}", reply.text);
        if !reply.blocks.is_empty() {
            reply.blocks.insert(
                0,
                Block::Context {
                    text: decision_line,
                },
            );
        }
        reply.replacing()
    }
}

fn pending_state(state: Option<Value>) -> Result<PendingState, CommandError> {
    state
        .map(serde_json::from_value)
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|e| CommandError::internal_with("pending requests do not parse", e))
}

fn to_value(state: &PendingState) -> Result<Value, CommandError> {
    serde_json::to_value(state).map_err(CommandError::internal)
}

/// The question and its buttons.
fn prompt(request: &Request, command: &CommandSpec, id: &str, expires_at: &DateTime<Utc>) -> Reply {
    let until = format_time(*expires_at);
    // Held requests are in canonical form already (see `hold`): in full, on one line.
    let asked = &request.text;
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
        text: format!("{verb} `{asked}`"),
        confirm: verb.into(),
        deny: "Back".into(),
    };
    let (text, buttons, visibility) = match &command.gate {
        Gate::Approval(access) => (
            format!(
                "{} asks to run `{asked}`. It needs approval by someone with {} (not the asker), by {until}.",
                request.caller.user.mention(),
                access.describe()
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
        _ => (
            format!("Run `{asked}`? Confirm by {until}."),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::Policy;
    use crate::store::{AuditLog, GrantStore};
    use crate::testing::TestBot;

    fn approvals() -> TestBot {
        let policy = Policy {
            grant_approval: Some(crate::access::Access::role(crate::ids::Role::admin())),
            ..Policy::default()
        };
        TestBot::with_policy(policy, |b| {
            b.admins([crate::ids::UserId::parse("UADMIN2").unwrap()])
        })
    }

    async fn grants(t: &TestBot) -> usize {
        t.store.all_grants().await.unwrap().len()
    }

    #[tokio::test]
    async fn a_confirmed_request_runs_once_however_often_it_is_clicked() {
        let t = TestBot::new();
        t.say("UADMIN", "roles grant <@UBOB> ops").await;
        let prompt = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
        assert_eq!(prompt.visibility, Visibility::Ephemeral);
        let first = t.click("UADMIN", &prompt, Decision::Confirm).await;
        assert!(first.replace_original);
        let second = t.click("UADMIN", &prompt, Decision::Confirm).await;
        assert_eq!(second.text, "This request was already handled.");
        assert!(!second.replace_original, "the outcome stays on screen");
        let audit = t.store.recent(None, 20).await.unwrap();
        let ran = audit
            .iter()
            .filter(|r| {
                r.outcome == Outcome::Succeeded && r.command.as_deref() == Some("roles revoke")
            })
            .count();
        assert_eq!(ran, 1);
        assert!(audit.iter().any(|r| r.outcome.name() == "held"));
    }

    #[tokio::test]
    async fn another_allowed_user_may_confirm_but_an_unauthorized_one_changes_nothing() {
        let t = TestBot::new();
        t.say("UADMIN", "roles grant <@UBOB> ops").await;
        let prompt = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
        let refused = t.click("UBOB", &prompt, Decision::Confirm).await;
        assert_eq!(refused.text, "You cannot confirm this: it needs admin.");
        assert_eq!(grants(&t).await, 1, "nothing ran");
        t.say("UADMIN", "roles grant <@UCAROL> admin").await;
        let done = t.click("UCAROL", &prompt, Decision::Confirm).await;
        assert!(
            done.text
                .starts_with("<@UCAROL> confirmed `roles revoke <@UBOB> ops`"),
            "{}",
            done.text
        );
        assert!(
            done.text
                .ends_with("<@UCAROL> revoked *ops* from <@UBOB>, ending the grant until revoked."),
            "runs as the clicker: {}",
            done.text
        );
    }

    #[tokio::test]
    async fn cancel_and_expiry_run_nothing() {
        let t = TestBot::new();
        t.say("UADMIN", "roles grant <@UBOB> ops").await;
        let prompt = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
        let cancelled = t.click("UADMIN", &prompt, Decision::Cancel).await;
        assert_eq!(
            cancelled.text,
            "<@UADMIN> withdrew `roles revoke <@UBOB> ops`; nothing was run."
        );
        let late = t.say("UADMIN", "roles revoke <@UBOB> ops").await;
        t.advance(PENDING_FOR);
        let expired = t.click("UADMIN", &late, Decision::Confirm).await;
        assert!(
            expired.text.starts_with("This request expired at"),
            "{}",
            expired.text
        );
        assert!(expired.replace_original);
        assert_eq!(grants(&t).await, 1);
        assert_eq!(
            t.click("UADMIN", &late, Decision::Confirm).await.text,
            "This request was already handled."
        );
    }

    #[tokio::test]
    async fn approval_needs_a_second_person_with_the_role() {
        let t = approvals();
        let prompt = t.say("UADMIN", "roles grant <@UBOB> ops for 2h").await;
        assert_eq!(prompt.visibility, Visibility::InChannel);
        assert!(
            prompt.text.contains("needs approval by someone with admin"),
            "{}",
            prompt.text
        );
        assert_eq!(grants(&t).await, 0, "nothing granted yet");
        assert_eq!(
            t.click("UADMIN", &prompt, Decision::Approve).await.text,
            "You cannot approve your own request."
        );
        assert_eq!(
            t.click("UBOB", &prompt, Decision::Approve).await.text,
            "You cannot approve this: it needs admin."
        );
        assert_eq!(grants(&t).await, 0);
        let approved = t.click("UADMIN2", &prompt, Decision::Approve).await;
        assert!(
            approved
                .text
                .starts_with("<@UADMIN2> approved `roles grant <@UBOB> ops for 2h` at"),
            "{}",
            approved.text
        );
        assert!(
            approved.text.contains("<@UADMIN> granted *ops* to <@UBOB>"),
            "runs as the asker: {}",
            approved.text
        );
        assert_eq!(grants(&t).await, 1);
        let audit = t.store.recent(None, 30).await.unwrap();
        assert!(audit.iter().any(|r| r.outcome
            == Outcome::Decided {
                decision: "approved".into(),
                by: crate::ids::UserId::parse("UADMIN2").unwrap()
            }));
        let approval = audit
            .iter()
            .find(|r| r.outcome.name() == "decided")
            .unwrap();
        let held = audit.iter().find(|r| r.outcome.name() == "held").unwrap();
        assert_eq!(
            approval.correlation_id, held.correlation_id,
            "one trail per request"
        );
    }

    #[tokio::test]
    async fn an_approver_may_deny_and_the_asker_may_withdraw() {
        let t = approvals();
        let prompt = t.say("UADMIN", "roles grant <@UBOB> ops").await;
        let denied = t.click("UADMIN2", &prompt, Decision::Deny).await;
        assert_eq!(
            denied.text,
            "<@UADMIN2> denied `roles grant <@UBOB> ops`; nothing was run."
        );
        let prompt = t.say("UADMIN", "roles grant <@UBOB> ops").await;
        assert_eq!(
            t.click("UBOB", &prompt, Decision::Deny).await.text,
            "You cannot deny this: it needs admin."
        );
        let withdrawn = t.click("UADMIN", &prompt, Decision::Deny).await;
        assert!(withdrawn.text.contains("withdrew"), "{}", withdrawn.text);
        assert_eq!(grants(&t).await, 0);
    }

    /// The text of the "are you sure?" dialog on a prompt's first button.
    fn dialog(prompt: &Reply) -> String {
        prompt
            .blocks
            .iter()
            .find_map(|b| match b {
                Block::Actions { buttons } => buttons[0].confirm.as_ref().map(|c| c.text.clone()),
                _ => None,
            })
            .expect("a dialog on the first button")
    }

    #[tokio::test]
    async fn prompts_and_outcomes_quote_the_request_on_one_line() {
        let typed = "roles revoke <@UBOB> ops\n• `forged` line";
        let shown = "roles revoke <@UBOB> ops • ˋforgedˋ line";
        let t = TestBot::new();
        // the confirmation prompt, its dialog, and a withdrawal
        let prompt = t.say("UADMIN", typed).await;
        assert!(
            prompt
                .text
                .starts_with(&format!("Run `{shown}`? Confirm by ")),
            "{}",
            prompt.text
        );
        assert!(!prompt.text.contains('\n'), "{}", prompt.text);
        assert_eq!(dialog(&prompt), format!("Run `{shown}`"));
        let withdrawn = t.click("UADMIN", &prompt, Decision::Cancel).await;
        assert_eq!(
            withdrawn.text,
            format!("<@UADMIN> withdrew `{shown}`; nothing was run.")
        );
        // the line that says who confirmed what
        let prompt = t.say("UADMIN", typed).await;
        let done = t.click("UADMIN", &prompt, Decision::Confirm).await;
        let first = done.text.lines().next().unwrap();
        assert!(
            first.starts_with(&format!("<@UADMIN> confirmed `{shown}` at ")),
            "{}",
            done.text
        );
        // the approval prompt and a denial
        let t = approvals();
        let typed = "roles grant <@UBOB> ops\n• `forged` line";
        let shown = "roles grant <@UBOB> ops • ˋforgedˋ line";
        let prompt = t.say("UADMIN", typed).await;
        assert!(
            prompt.text.starts_with(&format!(
                "<@UADMIN> asks to run `{shown}`. It needs approval"
            )),
            "{}",
            prompt.text
        );
        assert!(!prompt.text.contains('\n'), "{}", prompt.text);
        assert_eq!(dialog(&prompt), format!("Approve `{shown}`"));
        let denied = t.click("UADMIN2", &prompt, Decision::Deny).await;
        assert_eq!(
            denied.text,
            format!("<@UADMIN2> denied `{shown}`; nothing was run.")
        );
    }

    #[tokio::test]
    async fn padding_cannot_hide_what_an_approval_grants() {
        // the defect: 3,200 line breaks pushed `admin` past the cut prompt
        let t = approvals();
        let typed = format!("roles grant <@UBOB> {} admin", "\n".repeat(3_200));
        let prompt = t.say("UADMIN", &typed).await;
        assert!(
            prompt
                .text
                .starts_with("<@UADMIN> asks to run `roles grant <@UBOB> admin`."),
            "{}",
            prompt.text
        );
        assert_eq!(dialog(&prompt), "Approve `roles grant <@UBOB> admin`");
        // what runs is what was shown
        let done = t.click("UADMIN2", &prompt, Decision::Approve).await;
        assert!(
            done.text.contains("granted *admin* to <@UBOB>"),
            "{}",
            done.text
        );
    }

    #[tokio::test]
    async fn a_request_too_long_to_show_in_full_is_refused_not_cut() {
        let t = approvals();
        let long_role = "r".repeat(PROMPT_MAX);
        let reply = t
            .say("UADMIN", &format!("roles grant <@UBOB> {long_role}"))
            .await;
        assert!(
            reply
                .text
                .starts_with("This request is too long to show in full for approval"),
            "{}",
            reply.text
        );
        assert!(
            reply
                .blocks
                .iter()
                .all(|b| !matches!(b, Block::Actions { .. }))
        );
        let pending: PendingState = t.state(PENDING_SCRIPT).await;
        assert!(pending.requests.is_empty());
        let trail = t.audit(1).await;
        assert_eq!(trail[0].outcome.name(), "failed");
    }

    #[tokio::test]
    async fn a_confirm_button_cannot_settle_an_approval() {
        let t = approvals();
        let prompt = t.say("UADMIN", "roles grant <@UBOB> ops").await;
        assert_eq!(
            t.click("UADMIN2", &prompt, Decision::Confirm).await.text,
            "That button does not belong to this request."
        );
        assert_eq!(grants(&t).await, 0);
    }
}
