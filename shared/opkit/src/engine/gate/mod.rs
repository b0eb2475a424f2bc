//! Confirmation and two-person approval: Opkit's one-off handlers, the Slack way.
//!
//! A gated command's handler first validates its request and asks for its gate
//! ([`Ctx::confirm`](crate::engine::command::Ctx::confirm)) with a summary of what
//! it would do, before it changes anything: a request with bad arguments, or one
//! that would do nothing, is answered at once and never held. An asked request is
//! kept *pending* (in the built-in `opkit-pending` script state, saved with the
//! same optimistic version check as any state) and answered with buttons. A click
//! comes back as an interaction job, and [`Bot::decide`] settles it:
//!
//! ```text
//! confirm   asker or anyone allowed to run it → runs, as the clicker
//! cancel    the same people                   → nothing runs
//! approve   holds the approval role, and gains nothing    → runs, as the asker
//!           from it (not the asker, nor anyone the request
//!           names as gaining: the subject of a grant)
//! deny      holds the approval role (or is the asker, withdrawing) → nothing runs
//! ```
//!
//! The same decisions can be typed, for the shell, `opkit say --yes`, and Slack
//! clients where buttons fail: `approvals` lists what the typist may decide,
//! `confirm|cancel|approve|deny <id>` settle one (see [`typed`]); they call
//! [`Bot::decide`] as a click does, so they are authorized and audited alike.
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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::{Access, Alternative};
use crate::audit::Outcome;
use crate::engine::bot::{Bot, Clearance, Request};
use crate::engine::command::{Asked, Bindings, Caller, CommandError, CommandSpec, Gate};
use crate::engine::registry::Resolution;
use crate::ids::{Role, UserId};
use crate::mrkdwn;
use crate::slack::mrkdwn::{Code, CommandLine, Mrkdwn};
use crate::slack::{Block, Reply};
use crate::telemetry::ErrorChain;
use crate::text::{canonical, tokenize};

mod prompt;
mod room;
pub(crate) mod typed;

pub use prompt::MENTIONED_BENEFICIARIES;
use prompt::prompt;
pub use room::{MAX_HELD_BENEFICIARIES, MAX_HELD_BYTES, MAX_HELD_PER_USER, PENDING_BUDGET};

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
    /// Run the command written in the button's `value`, as the clicker: a
    /// *command button* ([`crate::slack::Button::command`]). The click is exactly
    /// as if the clicker had typed that command — matched, authorized, run and
    /// audited as theirs — so a button can grant nothing a user could not type.
    pub const RUN: &str = "opkit:run";
}

/// Whether `action_id` is one of Opkit's buttons ([`Decision`]s and
/// [`actions::RUN`]): the ingress acknowledges any other click and runs nothing.
pub fn is_opkit_action(action_id: &str) -> bool {
    action_id == actions::RUN || Decision::from_action(action_id).is_some()
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

    /// The verb, as typed (`cancel 1a2b3c4d`) and in refusals.
    pub fn verb(self) -> &'static str {
        match self {
            Decision::Confirm => "confirm",
            Decision::Cancel => "cancel",
            Decision::Approve => "approve",
            Decision::Deny => "deny",
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
    /// What it would do, as its handler said when it asked (mrkdwn, one line).
    #[serde(default)]
    pub summary: Mrkdwn,
    /// When it stops waiting.
    pub expires_at: DateTime<Utc>,
    /// Who gains from it besides the asker, as its handler said
    /// ([`Ctx::benefits`](crate::engine::command::Ctx::benefits)).
    /// At most [`MAX_HELD_BENEFICIARIES`]; the rest are counted in
    /// [`Pending::beneficiaries_unlisted`].
    #[serde(default)]
    pub beneficiaries: Vec<UserId>,
    /// How many more gain from it than [`Pending::beneficiaries`] lists (the
    /// members of a large group): none of them is refused at the click, but the
    /// approved run names who gains again and refuses an approver among them
    /// ([`Ctx::confirm`](crate::engine::command::Ctx::confirm)).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub beneficiaries_unlisted: usize,
    /// How the prompt names them, if not one by one
    /// ([`Ctx::name_beneficiaries`](crate::engine::command::Ctx::name_beneficiaries)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beneficiaries_named: Option<Mrkdwn>,
    /// Roles that may approve it besides the gate's approvers
    /// ([`Ctx::also_approved_by`](crate::engine::command::Ctx::also_approved_by)).
    #[serde(default)]
    pub also_approved_by: Vec<Role>,
    /// What the handler resolved its inputs to when it asked
    /// ([`Ctx::bind`](crate::engine::command::Ctx::bind)): its confirmed or
    /// approved run acts on the same, or is refused.
    #[serde(default)]
    pub bound: Bindings,
    /// The gate it was held under. It runs only while the command's gate is
    /// still this one ([`HeldGate::check`]); a request stored before this was
    /// kept (`None`) is refused.
    #[serde(default)]
    pub gate: Option<HeldGate>,
}

/// A command's gate as a held request keeps it: which kind, and for an
/// approval who approves, in a canonical order (alternatives and the roles in
/// each sorted), so that the same gate written in another order is the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HeldGate {
    /// A confirmation by the asker or anyone allowed to run the command.
    Confirm,
    /// An approval by a second person; `approvers` are the alternatives, each
    /// the roles held together, `None` for anyone (but the asker).
    Approval {
        /// Who approves, canonical.
        approvers: Option<Vec<Vec<Role>>>,
    },
}

impl HeldGate {
    /// The gate of a command as a request would be held under it; `None` for a
    /// command without a gate.
    pub fn of(gate: &Gate) -> Option<Self> {
        match gate {
            Gate::None => None,
            Gate::Confirm => Some(HeldGate::Confirm),
            Gate::Approval(Access::Open) => Some(HeldGate::Approval { approvers: None }),
            Gate::Approval(Access::AnyOf(alts)) => {
                let mut alts: Vec<Vec<Role>> = alts
                    .iter()
                    .map(|alt| {
                        let mut roles = alt.0.clone();
                        roles.sort();
                        roles.dedup();
                        roles
                    })
                    .collect();
                alts.sort();
                alts.dedup();
                Some(HeldGate::Approval {
                    approvers: Some(alts),
                })
            }
        }
    }

    /// What it asks for, for people: `a confirmation`, `approval by lead`.
    fn describe(gate: Option<&Self>) -> Mrkdwn {
        match gate {
            None => "no confirmation or approval".into(),
            Some(HeldGate::Confirm) => "a confirmation".into(),
            Some(HeldGate::Approval { approvers: None }) => {
                "approval by anyone but the asker".into()
            }
            Some(HeldGate::Approval {
                approvers: Some(alts),
            }) => {
                let access = Access::AnyOf(alts.iter().cloned().map(Alternative).collect());
                mrkdwn!("approval by someone with {}", access.describe())
            }
        }
    }

    /// Whether a request held under `held` may still be decided as it was
    /// asked, now that `command` has the gate it has: the same kind, and for an
    /// approval the same approvers. A tighter gate must not be passed by the
    /// weaker click it was asked under (a confirmation for a command that now
    /// needs a second person), nor a looser one taken by a click the prompt did
    /// not offer; either way the request is asked again. `Err`: why not.
    pub fn check(held: Option<&Self>, command: &CommandSpec) -> Result<(), Mrkdwn> {
        let now = Self::of(&command.gate);
        match held {
            Some(held) if now.as_ref() == Some(held) => Ok(()),
            Some(held) => Err(mrkdwn!(
                "{} now needs {} since this was asked (it needed {}); nothing was run. \
                 Ask again if you still want it.",
                Code::new(&command.name),
                Self::describe(now.as_ref()),
                Self::describe(Some(held))
            )),
            None => Err(mrkdwn!(
                "This request was held without a record of its gate, so it cannot be \
                 checked against what {} needs now; nothing was run. Ask again if you \
                 still want it.",
                Code::new(&command.name)
            )),
        }
    }
}

impl Pending {
    /// Whether `user` gains from this request: its asker, or someone its
    /// handler named. The one check that keeps the second person of a two-person
    /// rule a second person.
    pub fn benefits(&self, user: &UserId) -> bool {
        user == &self.request.caller.user || self.beneficiaries.contains(user)
    }

    /// Who may approve it: the gate's approvers, and the roles its handler
    /// added. `None` for a command without an approval gate.
    pub fn approvers(&self, command: &CommandSpec) -> Option<Access> {
        let Gate::Approval(access) = &command.gate else {
            return None;
        };
        let mut access = access.clone();
        if let Access::AnyOf(alts) = &mut access {
            for role in &self.also_approved_by {
                let alt = Alternative(vec![role.clone()]);
                if !alts.contains(&alt) {
                    alts.push(alt);
                }
            }
        }
        Some(access)
    }
}

/// The built-in script state: pending requests by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingState {
    /// Pending requests by id.
    #[serde(default)]
    pub requests: BTreeMap<String, Pending>,
    /// Requests settled lately, by id, with when that is forgotten
    /// ([`PENDING_FOR`] after): so that a second click hears the request was
    /// handled, and a made-up id that there is no such request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settled: BTreeMap<String, DateTime<Utc>>,
    /// Requests dropped lately to make room for others' (their asker held the
    /// most when the held requests filled their room; see [`room`]), by id,
    /// with when that is forgotten: a click on one says so.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dropped: BTreeMap<String, DateTime<Utc>>,
}

/// How a click went, before anything runs.
enum Settled {
    /// Run the request as this caller.
    Run(Pending, Caller),
    /// Nothing runs; replace the buttons with this.
    Closed(Pending, Mrkdwn),
    /// Nothing changes; tell the clicker only.
    Refused(Mrkdwn),
}

impl Bot {
    /// Keeps a gated request, validated by its handler, pending and answers with
    /// its buttons; `summary` is what the handler said it would do.
    pub(crate) async fn hold(
        &self,
        request: &Request,
        command: &CommandSpec,
        asked: Asked,
    ) -> Reply {
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
                    CommandError::user(mrkdwn!(
                        "This request is too long to show in full for {} ({} \
                         characters; at most {}), so nothing was held or run. \
                         Shorten it.",
                        what,
                        length,
                        PROMPT_MAX
                    )),
                )
                .await;
        }
        let request = &Request {
            text: shown,
            ..request.clone()
        };
        // A group's members are each named as gaining, and a group may have
        // thousands: the held request lists some and counts the rest.
        let mut beneficiaries = asked.beneficiaries;
        let beneficiaries_unlisted = beneficiaries.len().saturating_sub(MAX_HELD_BENEFICIARIES);
        beneficiaries.truncate(MAX_HELD_BENEFICIARIES);
        let pending = Pending {
            request: request.clone(),
            command: command.name.clone(),
            approval,
            summary: asked.summary,
            expires_at: now + PENDING_FOR,
            beneficiaries,
            beneficiaries_unlisted,
            beneficiaries_named: asked.beneficiaries_named,
            also_approved_by: asked.also_approved_by,
            bound: asked.bound,
            gate: HeldGate::of(&command.gate),
        };
        let saved = self
            .update_state(PENDING_SCRIPT, true, |state| {
                let pending = pending.clone();
                let id = id.clone();
                Box::pin(async move {
                    let mut state = pending_state(state)?;
                    match state.admit(id, pending, now) {
                        Ok(dropped) => Ok((Ok(dropped), Some(to_value(&state)?))),
                        Err(why) => Ok((Err(why), None)),
                    }
                })
            })
            .await;
        let name = Some(command.name.as_str());
        let dropped = match saved {
            Ok(Ok(dropped)) => dropped,
            Ok(Err(why)) => return self.failed(request, name, CommandError::user(why)).await,
            Err(e) => return self.failed(request, name, e).await,
        };
        for (dropped_id, held) in dropped {
            tracing::warn!(
                pending_id = %dropped_id,
                asker = %held.request.caller.user,
                for_request = %id,
                "dropped a held request to make room: its asker held the most"
            );
            crate::metrics::state_evicted(PENDING_SCRIPT, "held_request");
            let action = "dropped while waiting, to make room for another's request \
                          (its asker held the most requests waiting)";
            self.audit(
                &held.request,
                Some(&held.command),
                Outcome::System {
                    action: action.to_string(),
                },
            )
            .await;
        }
        let awaiting = match pending.approvers(command) {
            Some(access) => format!("approval by {}", access.describe().as_str()),
            None => "confirmation".to_string(),
        };
        self.audit(
            request,
            name,
            Outcome::Held {
                awaiting: awaiting.clone(),
            },
        )
        .await;
        prompt(&pending, command, &id)
    }

    /// Settles a click on a pending request's button. Returns the reply for the
    /// interaction's `response_url`: replacing the buttons with the outcome, or,
    /// when the click changes nothing, an ephemeral note for the clicker only.
    pub async fn decide(&self, clicker: &Caller, pending_id: &str, decision: Decision) -> Reply {
        // A click may be the first thing a new worker sees: its commands first.
        self.refresh_commands().await;
        self.decide_or_refuse(clicker, pending_id, decision)
            .await
            .unwrap_or_else(Reply::text)
    }

    /// [`Bot::decide`], with a click that changes nothing (`Err`: why) told apart
    /// from one that settled the request.
    pub(crate) async fn decide_or_refuse(
        &self,
        clicker: &Caller,
        pending_id: &str,
        decision: Decision,
    ) -> Result<Reply, Mrkdwn> {
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
                return Err("Sorry, I could not record that decision; please try again.".into());
            }
        };
        Ok(match settled {
            Settled::Refused(why) => return Err(why),
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
        })
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
            let why = if state.settled.contains_key(pending_id) {
                "This request was already handled."
            } else if state.dropped.contains_key(pending_id) {
                "This request was dropped before it was decided, to make room for \
                 others' requests: its asker held the most of those waiting. Nothing \
                 was run; ask again if you still want it."
            } else {
                "There is no such request (it may have expired); nothing was run."
            };
            return Ok((Settled::Refused(why.into()), None));
        };
        let asker = &pending.request.caller.user;
        let mine = &clicker.user == asker;
        let close = |state: &mut PendingState, settled: Settled| {
            state.requests.remove(pending_id);
            state.remember_settled(pending_id, now);
            Ok((settled, Some(to_value(state)?)))
        };
        if pending.expires_at <= now {
            let text = mrkdwn!(
                "This request expired at {}; nothing was run.",
                pending.expires_at
            );
            return close(&mut state, Settled::Closed(pending, text));
        }
        let command = self.registry().find(&pending.command).cloned();
        let Some(command) = command else {
            let text = mrkdwn!(
                "{} no longer exists; nothing was run.",
                Code::new(&pending.command)
            );
            return close(&mut state, Settled::Closed(pending, text));
        };
        if let Err(why) = self
            .may_settle(&clicker.user, &pending, &command, decision)
            .await?
        {
            return Ok((Settled::Refused(why), None));
        }
        // The click decides the request under the gate its prompt showed, or
        // not at all: the command may have been changed while it waited.
        if matches!(decision, Decision::Confirm | Decision::Approve)
            && let Err(why) = HeldGate::check(pending.gate.as_ref(), &command)
        {
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
                let text = mrkdwn!(
                    "{} {} {}; nothing was run.",
                    clicker.user.mention(),
                    verb,
                    CommandLine::new(&pending.request.text)
                );
                Settled::Closed(pending, text)
            }
        };
        close(&mut state, settled)
    }

    /// Whether `user` may settle `pending` (a request of `command`) with
    /// `decision`: the rules of the table above, for clicks and typed decisions
    /// alike. `Err` says why not.
    pub(crate) async fn may_settle(
        &self,
        user: &UserId,
        pending: &Pending,
        command: &CommandSpec,
        decision: Decision,
    ) -> Result<Result<(), Mrkdwn>, CommandError> {
        let mine = user == &pending.request.caller.user;
        let approvers = pending
            .approvers(command)
            .unwrap_or_else(|| command.access.clone());
        let (allowed, why) = match (decision, pending.approval) {
            (Decision::Confirm | Decision::Cancel, false) => (
                mine || self.allows(user, &command.access).await?,
                mrkdwn!(
                    "You cannot {} this: it needs {}.",
                    decision.verb(),
                    command.access.describe()
                ),
            ),
            (Decision::Approve, true) if mine => {
                (false, "You cannot approve your own request.".into())
            }
            (Decision::Approve, true) if pending.benefits(user) => (
                false,
                "You cannot approve a request that gives you something; \
                 someone else must."
                    .into(),
            ),
            (Decision::Approve, true) => (
                self.allows(user, &approvers).await?,
                mrkdwn!(
                    "You cannot approve this: it needs {}.",
                    approvers.describe()
                ),
            ),
            (Decision::Deny, true) => (
                mine || self.allows(user, &approvers).await?,
                mrkdwn!("You cannot deny this: it needs {}.", approvers.describe()),
            ),
            _ => (false, "That button does not belong to this request.".into()),
        };
        Ok(if allowed { Ok(()) } else { Err(why) })
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
            return Reply::text(mrkdwn!(
                "{} no longer exists; nothing was run.",
                CommandLine::new(&request.text)
            ))
            .replacing();
        };
        // A decided run that is refused did nothing: the refusal is the whole
        // outcome, in place of the buttons — never under "@x confirmed …"
        // (tester F14, G11). One rule for confirmations and approvals.
        match self.clearance(&request.caller.user, &command, &args).await {
            Ok(Clearance::Cleared(_)) => {}
            Ok(Clearance::Denied(d)) => {
                let text = mrkdwn!(
                    "{} may no longer run {} (it needs {}); nothing was run.{}",
                    request.caller.user.mention(),
                    CommandLine::new(&request.text),
                    command.access.describe(),
                    d.unverified_note()
                );
                return Reply::text(text).replacing();
            }
            Ok(Clearance::Refused(e)) => {
                // The command's own rule, asked again as it runs (the asker may
                // have lost what let them ask).
                return self.answer_error(&request, &command, e).await.replacing();
            }
            Err(e) => {
                return self
                    .failed(&request, Some(&command.name), e)
                    .await
                    .replacing();
            }
        }
        let decision_line = mrkdwn!(
            "{} {} {} at {}.",
            clicker.user.mention(),
            decision.past_tense(),
            CommandLine::new(&request.text),
            self.now()
        );
        // The decision above the outcome, in place of the buttons: through
        // `presenting`, so that the reply kept with the job is this one too. A
        // run its handler refused before it acted ([`Ran::Refused`]) shows the
        // refusal alone.
        let refused = Arc::new(AtomicBool::new(false));
        let present = {
            let refused = refused.clone();
            move |mut reply: Reply| {
                if refused.load(Ordering::SeqCst) {
                    return reply.replacing();
                }
                reply.text = mrkdwn!("{}\n{}", decision_line, reply.text);
                if !reply.blocks.is_empty() {
                    reply.blocks.insert(
                        0,
                        Block::Context {
                            text: decision_line.clone(),
                        },
                    );
                }
                reply.replacing()
            }
        };
        let approved_by = (decision == Decision::Approve).then(|| clicker.user.clone());
        let run = async {
            let (reply, was_refused) = self
                .run_reporting(&request, &command, args, true, pending.bound, approved_by)
                .await;
            refused.store(was_refused, Ordering::SeqCst);
            reply
        };
        crate::engine::deferred::presenting(present, run).await
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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

/// How a pending request is named when typed: the start of its id, enough to
/// be unique among a handful of pending requests (see [`typed`]).
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(SHORT_ID_LEN)]
}

/// Characters of a pending id shown for typing.
const SHORT_ID_LEN: usize = 8;

#[cfg(test)]
mod bind_tests;
#[cfg(test)]
mod held_tests;
#[cfg(test)]
mod refused_tests;
#[cfg(test)]
mod tests;
