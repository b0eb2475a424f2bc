//! The notification messages, in Block Kit. Everything AWS wrote — alarm names,
//! reasons, descriptions, metric names — is outside text: shown through
//! [`UserText`], never as markup.

use chrono::{DateTime, Utc};

use super::event::{AlarmFacts, AlarmState, InstanceChange};
use super::state::{AlarmRecord, Incident};
use opkit::slack::mrkdwn::link;
use opkit::slack::{Block, Button, Mrkdwn, Reply, UserText, Visibility};
use opkit::text::quote;

use crate::accounts::AccountBook;

/// The command a button runs for `verb` on the alarm `name`, as typed
/// (`alarms ack "api 5xx"`): the name quoted with [`opkit::text::quote`], never
/// spliced, so that it reads back as exactly the name and as one argument
/// whatever AWS allowed in it (`for`, `in`, a `"`); `tail` (fixed words of ours)
/// after it. `None` when no command can spell the name as one argument (its
/// quote marks: [`opkit::text::quote`]).
pub fn command_for(verb: &str, name: &str, tail: &str) -> Option<String> {
    let name = quote(name)?;
    Some(if tail.is_empty() {
        format!("{verb} {name}")
    } else {
        format!("{verb} {name} {tail}")
    })
}

/// The incident's message (the one that opened it, drawn again on each change):
/// the alarm's state, the reason, when, where, the metric and threshold, a
/// runbook, who acknowledged it; and, while it is open, its buttons
/// ([`buttons`], `accounts` naming the account for Graph).
pub fn incident_message(
    record: &AlarmRecord,
    incident: &Incident,
    accounts: &AccountBook,
) -> Reply {
    let facts = &record.facts;
    let name = UserText::flat(&facts.name);
    let headline = match incident.ended_at {
        Some(end) => opkit::mrkdwn!(
            "{} *{}* is OK again: in ALARM for {}, from {}",
            AlarmState::Ok.emoji(),
            name,
            end - incident.since,
            incident.since
        ),
        None => opkit::mrkdwn!(
            "{} *{}* is {}",
            record.state.emoji(),
            name,
            record.state.as_str()
        ),
    };
    let mut reply = Reply::text(headline.clone())
        .with_visibility(Visibility::InChannel)
        .block(Block::Section { text: headline });
    if !facts.reason.is_empty() {
        reply = reply.block(Block::Section {
            text: UserText::flat(&facts.reason).into(),
        });
    }
    reply = reply.block(Block::Context {
        text: context_line(record, incident),
    });
    let mut status = Vec::new();
    if incident.changes > 0 {
        status.push(opkit::mrkdwn!("{} since it began", changes_said(incident)));
    }
    if let Some(who) = &incident.acked_by {
        status.push(opkit::mrkdwn!(":eyes: acknowledged by {}", who.mention()));
    }
    if let Some(mute) = &record.muted {
        status.push(opkit::mrkdwn!(
            ":no_bell: muted by {} until {}",
            mute.by.mention(),
            mute.until
        ));
    }
    if !status.is_empty() {
        reply = reply.block(Block::Context {
            text: Mrkdwn::join(status, " · "),
        });
    }
    if incident.ended_at.is_none() {
        reply = match buttons(facts, accounts) {
            Some(buttons) => reply.block(Block::Actions { buttons }),
            None => reply.block(Block::Context {
                text: "This alarm has no buttons: no command can spell its name as one \
                       argument (the quote marks in it), or its account and region."
                    .into(),
            }),
        };
    }
    reply
}

/// Graph, Acknowledge, Mute 1h, Mute 4h: command buttons, each authorized and
/// audited as the command it runs, each acting on this alarm's account and
/// region only, never on a same-named alarm elsewhere. Acknowledge and Mute
/// carry `in <account id> <region>` ([`super::scope::words`]); Graph carries
/// the account as `graph` names it ([`graph_place`]), and is left out when no
/// account of `accounts` is this one. `None` when the name or the place cannot
/// be typed ([`command_for`]).
pub fn buttons(facts: &AlarmFacts, accounts: &AccountBook) -> Option<Vec<Button>> {
    let name = &facts.name;
    let place = super::scope::words(facts)?;
    let mut buttons = Vec::new();
    if let Some(graph) = graph_place(facts, accounts) {
        buttons.push(Button::command(
            "Graph",
            command_for("graph", name, &graph)?,
        ));
    }
    buttons.extend([
        Button {
            style: Some("primary".into()),
            ..Button::command("Acknowledge", command_for("alarms ack", name, &place)?)
        },
        Button::command(
            "Mute 1h",
            command_for("alarms mute", name, &format!("{place} for 1h"))?,
        ),
        Button::command(
            "Mute 4h",
            command_for("alarms mute", name, &format!("{place} for 4h"))?,
        ),
    ]);
    Some(buttons)
}

/// The `in …` words with which `graph` looks where the alarm of `facts` is:
/// the account of `accounts` whose role is in that account, by name; else the
/// bot's own account (named, or the only one when `accounts` is empty); with
/// the alarm's region either way, so that a channel's default never moves it.
/// `None` when the alarm's account is none of them (another account's role
/// but not configured) or its region cannot be typed.
pub fn graph_place(facts: &AlarmFacts, accounts: &AccountBook) -> Option<String> {
    let region = super::scope::words(facts).map(|_| facts.region.as_str())?;
    let by_role = accounts
        .accounts()
        .find(|a| a.account_id() == Some(facts.account.as_str()));
    match by_role.or_else(|| accounts.own()) {
        Some(account) => Some(format!("in {} {region}", account.name)),
        None if accounts.is_empty() => Some(format!("in {region}")),
        None => None,
    }
}

fn context_line(record: &AlarmRecord, incident: &Incident) -> Mrkdwn {
    let facts = &record.facts;
    let mut parts = vec![opkit::mrkdwn!(
        "{} · {} · account {}",
        record.at,
        UserText::flat(&facts.region),
        UserText::flat(&facts.account)
    )];
    if let Some(metric) = &facts.metric {
        let threshold = facts.threshold.map(|t| opkit::mrkdwn!(", threshold {}", t));
        parts.push(opkit::mrkdwn!("{}{}", UserText::flat(metric), threshold));
    }
    if let Some(url) = &facts.runbook {
        parts.push(link(url, &UserText::new("Runbook")));
    }
    let _ = incident;
    Mrkdwn::join(parts, " · ")
}

/// How many changes an incident has had, and how many of them were only
/// counted (within [`FLAP_WINDOW`](super::incident::FLAP_WINDOW) of the last
/// thread reply): `1 state change`, `6 state changes, 2 not posted in the
/// thread (within 5m of a reply)`.
pub fn changes_said(incident: &Incident) -> Mrkdwn {
    let noun = if incident.changes == 1 {
        "state change"
    } else {
        "state changes"
    };
    let quiet = (incident.quiet > 0).then(|| {
        opkit::mrkdwn!(
            ", {} not posted in the thread (within {} of a reply)",
            incident.quiet,
            UserText::new(opkit::timespec::format_duration(
                super::incident::FLAP_WINDOW
            ))
        )
    });
    opkit::mrkdwn!("{} {}{}", incident.changes, UserText::new(noun), quiet)
}

/// A reply in the incident's thread for a change inside it.
pub fn thread_reply(record: &AlarmRecord, incident: &Incident) -> Reply {
    let name = UserText::flat(&record.facts.name);
    let text = match incident.ended_at {
        Some(end) => opkit::mrkdwn!(
            "{} *{}* is back to OK after {} ({})",
            AlarmState::Ok.emoji(),
            name,
            end - incident.since,
            changes_said(incident)
        ),
        None => opkit::mrkdwn!(
            "{} *{}* is {} ({}): {}",
            record.state.emoji(),
            name,
            record.state.as_str(),
            record.at,
            UserText::flat(&record.facts.reason)
        ),
    };
    Reply::in_channel(text)
}

/// A change outside any incident (INSUFFICIENT_DATA, or OK after an ALARM no
/// message was posted for).
pub fn single_message(record: &AlarmRecord, previous: Option<AlarmState>) -> Reply {
    let name = UserText::flat(&record.facts.name);
    let was = previous
        .map(|p| opkit::mrkdwn!(" (was {})", p.as_str()))
        .unwrap_or_default();
    let text = opkit::mrkdwn!(
        "{} *{}* is {}{}",
        record.state.emoji(),
        name,
        record.state.as_str(),
        was
    );
    let context = opkit::mrkdwn!(
        "{} · {} · account {}",
        record.at,
        UserText::flat(&record.facts.region),
        UserText::flat(&record.facts.account)
    );
    let mut reply = Reply::in_channel(text.clone()).block(Block::Section { text });
    if !record.facts.reason.is_empty() {
        reply = reply.block(Block::Section {
            text: UserText::flat(&record.facts.reason).into(),
        });
    }
    reply.block(Block::Context { text: context })
}

/// The direct message to someone who watches the alarm (`alarms watch`).
pub fn watch_message(record: &AlarmRecord, previous: Option<AlarmState>) -> Reply {
    let stop = opkit::mrkdwn!(
        "You watch this alarm: {} stops these messages.",
        opkit::slack::Code::new(
            &command_for("alarms unwatch", &record.facts.name, "")
                .unwrap_or_else(|| "alarms unwatch <name>".into())
        )
    );
    single_message(record, previous).block(Block::Context { text: stop })
}

/// An instance's state change.
pub fn instance_message(change: &InstanceChange) -> Reply {
    let emoji = match change.state.as_str() {
        "running" => ":large_green_circle:",
        "stopped" | "terminated" => ":red_circle:",
        _ => ":large_yellow_circle:",
    };
    let text = opkit::mrkdwn!(
        "{} Instance {} is {} ({} · {} · account {})",
        emoji,
        UserText::flat(&change.instance),
        UserText::flat(&change.state),
        change.at,
        UserText::flat(&change.region),
        UserText::flat(&change.account)
    );
    Reply::in_channel(text.clone()).block(Block::Section { text })
}

/// "no longer muted", said in the incident's thread when a mute's time is up:
/// the alarm's name and `place` (its account and region, as every other
/// message about it names them: one name may be an alarm in several places).
pub fn mute_ended(name: &str, place: Mrkdwn, at: DateTime<Utc>) -> Mrkdwn {
    opkit::mrkdwn!(
        ":bell: *{}* {} is no longer muted ({}): its changes are posted again.",
        UserText::flat(name),
        place,
        at
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(changes: u32, quiet: u32) -> Incident {
        Incident {
            since: DateTime::<Utc>::MIN_UTC,
            posts: Vec::new(),
            changes,
            quiet,
            last_reply_at: None,
            ended_at: None,
            acked_by: None,
        }
    }

    #[test]
    fn changes_are_counted_in_words_a_reader_follows() {
        // the finding F6: "1 state changes", "(3 changes, 0 of them not posted one by one)"
        assert_eq!(changes_said(&incident(1, 0)), "1 state change");
        assert_eq!(changes_said(&incident(3, 0)), "3 state changes");
        assert_eq!(
            changes_said(&incident(6, 1)),
            "6 state changes, 1 not posted in the thread (within 5m of a reply)"
        );
        assert_eq!(
            changes_said(&incident(6, 2)),
            "6 state changes, 2 not posted in the thread (within 5m of a reply)"
        );
    }
}
