//! `alarms watch|unwatch <name>` and `alarms watched`: the watchlist, kept in the
//! script's state.

use std::sync::Arc;

use super::{CloudWatchState, MAX_ALARMS, Pack, one_name, plural};
use crate::packs::aws::format;
use opkit::engine::command::{CommandError, Ctx};
use opkit::slack::{Mrkdwn, Reply};

/// Most alarms on one watchlist.
pub const MAX_WATCHED: usize = 50;
/// Most people told of one watched alarm.
pub const MAX_WATCHERS: usize = 20;
/// Most alarms one person watches, put on the watchlist or joined (the list is
/// everyone's: one person may not fill it for the others).
pub const MAX_WATCHED_PER_USER: usize = 10;

pub(super) async fn watch(
    ctx: &mut Ctx<CloudWatchState>,
    pack: Arc<Pack>,
) -> Result<Reply, CommandError> {
    let name = one_name(&ctx.args)?;
    let user = ctx.caller.user.clone();
    // One cap for every alarm a person watches, put on the list or joined: the
    // same count refuses both, so the refusal says what it counts.
    let theirs = ctx
        .state
        .watched
        .iter()
        .filter(|n| {
            ctx.state
                .watchers
                .get(*n)
                .is_some_and(|w| w.contains(&user))
        })
        .count();
    let already = ctx
        .state
        .watchers
        .get(&name)
        .is_some_and(|w| w.contains(&user));
    if theirs >= MAX_WATCHED_PER_USER && !already {
        return Err(CommandError::user(crate::packs::aws::format::plain(
            format!(
                "You already watch {theirs} alarms, the most one person may watch;                  `alarms unwatch <name>` one first."
            ),
        )));
    }
    if ctx.state.watched.contains(&name) {
        // Someone else's watch: this user gets the direct messages too.
        let watchers = ctx.state.watchers.entry(name.clone()).or_default();
        if watchers.len() >= MAX_WATCHERS || !watchers.insert(user) {
            return Err(CommandError::user(crate::packs::aws::format::plain(
                format!("*{name}* is already watched."),
            )));
        }
        return Ok(Reply::text(crate::packs::aws::format::plain(format!(
            "*{name}* is on the watchlist: you will get a direct message when it changes state."
        ))));
    }
    if ctx.state.watched.len() >= MAX_WATCHED {
        return Err(CommandError::user(crate::packs::aws::format::plain(
            format!("The watchlist is full ({MAX_WATCHED} alarms); unwatch one first."),
        )));
    }
    let Some(alarm) = pack.alarm(&name).await? else {
        return Err(CommandError::user(crate::packs::aws::format::plain(
            format!(
                "No alarm named *{name}* in {} (names are case-sensitive).",
                pack.site.label
            ),
        )));
    };
    ctx.state.watched.insert(name.clone());
    ctx.state
        .watchers
        .entry(name.clone())
        .or_default()
        .insert(user);
    Ok(Reply::text(crate::packs::aws::format::plain(format!(
        "Watching *{name}* ({} now in {}). `alarms watched` shows the watchlist.",
        alarm.state, pack.site.label
    ))))
}

pub(super) async fn unwatch(
    ctx: &mut Ctx<CloudWatchState>,
    _pack: Arc<Pack>,
) -> Result<Reply, CommandError> {
    let name = one_name(&ctx.args)?;
    ctx.state.watchers.remove(&name);
    if !ctx.state.watched.remove(&name) {
        return Err(CommandError::user(crate::packs::aws::format::plain(
            format!("*{name}* is not on the watchlist."),
        )));
    }
    Ok(Reply::text(crate::packs::aws::format::plain(format!(
        "Stopped watching *{name}*."
    ))))
}

pub(super) async fn watched(
    ctx: &mut Ctx<CloudWatchState>,
    pack: Arc<Pack>,
) -> Result<Reply, CommandError> {
    if !ctx.args.is_empty() {
        return Err(CommandError::usage("`alarms watched` takes no arguments"));
    }
    if ctx.state.watched.is_empty() {
        return Ok(Reply::text(
            "The watchlist is empty: `alarms watch <name>` adds an alarm.",
        ));
    }
    let names: Vec<String> = ctx.state.watched.iter().cloned().collect();
    let mut found = Vec::new();
    for chunk in names.chunks(100) {
        found.extend(pack.alarms(None, None, Some(chunk.to_vec())).await?);
    }
    // Those in ALARM first, newest change first; then the rest; then the gone.
    found.sort_by(|a, b| {
        (b.state == "ALARM")
            .cmp(&(a.state == "ALARM"))
            .then(b.since.cmp(&a.since))
    });
    let now = ctx.now;
    let mut lines: Vec<Mrkdwn> = found.iter().map(|a| a.line(now)).collect();
    lines.extend(
        names
            .iter()
            .filter(|n| !found.iter().any(|a| &a.name == *n))
            .map(|n| format::plain(format!("• *{n}* — no longer exists in {}", pack.site.label))),
    );
    let (mut lines, more) = format::truncate(lines, MAX_ALARMS);
    lines.extend(format::and_more(more));
    let alarming = found.iter().filter(|a| a.state == "ALARM").count();
    Ok(format::reply(
        format::plain(format!(
            "{} watched alarm{} in {}, {alarming} in ALARM:",
            names.len(),
            plural(names.len()),
            pack.site.label
        )),
        Mrkdwn::join(lines, "\n"),
    ))
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
