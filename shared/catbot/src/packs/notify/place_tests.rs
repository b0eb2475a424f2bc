//! The buttons and the typed commands act on one alarm — the incident's own
//! account and region — and carry its name quoted, whatever AWS allowed in it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use opkit::slack::web::MemoryChannelPoster;
use opkit::slack::{Block, Reply};
use opkit::testing::{ADMIN, TestBot};
use serde_json::Value;

use super::*;
use crate::accounts::AccountBook;

const ALARM_EVENT: &str = include_str!("../../../../../events/notify/alarm_state_change.json");
const PROD: &str = "111111111111";
const STAGING: &str = "222222222222";

/// The documented alarm event for `name` in `account` and `region`, into `state`.
fn event(name: &str, account: &str, region: &str, state: &str, at: DateTime<Utc>) -> String {
    let mut event: Value = serde_json::from_str(ALARM_EVENT).unwrap();
    event["id"] = format!("{account}-{region}-{state}-{}", at.timestamp_millis()).into();
    event["account"] = account.into();
    event["region"] = region.into();
    event["detail"]["alarmName"] = name.into();
    event["detail"]["previousState"]["value"] = (if state == "OK" { "ALARM" } else { "OK" }).into();
    event["detail"]["state"]["value"] = state.into();
    event["detail"]["state"]["timestamp"] =
        at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string().into();
    event.to_string()
}

struct Rig {
    t: TestBot,
    posts: Arc<MemoryChannelPoster>,
    notifier: Notifier,
}

/// Notifications with prod and staging named, everything subscribed.
async fn rig() -> Rig {
    let posts = Arc::new(MemoryChannelPoster::new());
    let book = Arc::new(
        AccountBook::parse(&format!(
            r#"{{"prod": {{"role_arn": "arn:aws:iam::{PROD}:role/o"}},
            "staging": {{"role_arn": "arn:aws:iam::{STAGING}:role/o"}}}}"#
        ))
        .unwrap(),
    );
    let opts = NotifyOptions {
        channels: Some(posts.clone()),
        accounts: book.clone(),
        ..NotifyOptions::default()
    };
    let t = TestBot::with(|b| b.script(script(opts)));
    let notifier = Notifier::new(t.bot.clone(), Some(posts.clone())).with_accounts(book);
    t.text(ADMIN, "alarms subscribe all").await;
    Rig { t, posts, notifier }
}

impl Rig {
    async fn alarm(&self, name: &str, account: &str, region: &str, state: &str) -> Outcome {
        let body = event(name, account, region, state, self.t.now());
        self.notifier.handle(&body).await.expect("handled")
    }

    fn record(
        &self,
        state: &NotifyState,
        account: &str,
        region: &str,
        name: &str,
    ) -> state::AlarmRecord {
        state.alarms[&state::AlarmRecord::key(account, region, name)].clone()
    }
}

fn values(message: &Reply) -> Vec<String> {
    message
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Actions { buttons } => Some(buttons),
            _ => None,
        })
        .flatten()
        .map(|b| b.value.clone())
        .collect()
}

#[tokio::test]
async fn a_mute_button_mutes_the_incident_it_is_on_not_the_same_name_elsewhere() {
    // GIVEN api-5xx in ALARM in staging and in prod: two messages (the finding F10)
    let r = rig().await;
    r.alarm("api-5xx", STAGING, "us-west-2", "ALARM").await;
    r.alarm("api-5xx", PROD, "us-west-2", "ALARM").await;
    let posts = r.posts.posts();
    assert_eq!(posts.len(), 2);
    let staging = posts[0].reply.clone();
    assert_eq!(
        values(&staging),
        [
            "graph \"api-5xx\" in staging us-west-2",
            "alarms ack \"api-5xx\" in 222222222222 us-west-2",
            "alarms mute \"api-5xx\" in 222222222222 us-west-2 for 1h",
            "alarms mute \"api-5xx\" in 222222222222 us-west-2 for 4h",
        ]
    );
    // WHEN Mute 1h is clicked on staging's message
    let muted = r.t.press(ADMIN, &staging, "Mute 1h").await.text;
    assert!(
        muted.contains("muted *api-5xx* (account 222222222222, us-west-2) until"),
        "{muted}"
    );
    // THEN staging's is muted and prod's is not: prod's recovery is posted
    let state: NotifyState = r.t.state(SCRIPT).await;
    assert!(
        r.record(&state, STAGING, "us-west-2", "api-5xx")
            .muted
            .is_some()
    );
    assert!(
        r.record(&state, PROD, "us-west-2", "api-5xx")
            .muted
            .is_none()
    );
    // AND Acknowledge on prod's message acknowledges prod's incident only
    let acked = r.t.press("UBOB", &posts[1].reply, "Acknowledge").await.text;
    assert!(
        acked.contains("(account 111111111111, us-west-2)"),
        "{acked}"
    );
    let state: NotifyState = r.t.state(SCRIPT).await;
    let acked_by = |account| {
        r.record(&state, account, "us-west-2", "api-5xx")
            .incident
            .and_then(|i| i.acked_by)
    };
    assert!(acked_by(PROD).is_some() && acked_by(STAGING).is_none());
    // AND prod's recovery is still posted (prod was not muted)
    r.t.advance(chrono::Duration::minutes(1));
    let out = r.alarm("api-5xx", PROD, "us-west-2", "OK").await;
    assert!(out.posted > 0, "{out:?}");
}

#[tokio::test]
async fn typed_without_in_a_name_in_several_places_asks_which_and_changes_nothing() {
    let r = rig().await;
    r.alarm("api-5xx", STAGING, "us-west-2", "ALARM").await;
    r.alarm("api-5xx", PROD, "eu-west-1", "ALARM").await;
    let before: NotifyState = r.t.state(SCRIPT).await;
    let asked = r.t.text("UBOB", "alarms ack api-5xx").await;
    assert!(
        asked.starts_with("*api-5xx* is an alarm in 2 places; I changed nothing. Say which:"),
        "{asked}"
    );
    assert!(
        asked.contains("`alarms ack \"api-5xx\" in 111111111111 eu-west-1`"),
        "{asked}"
    );
    let mute = r.t.text(ADMIN, "alarms mute api-5xx for 2h").await;
    assert!(
        mute.contains("`alarms mute \"api-5xx\" in 222222222222 us-west-2 for 2h`"),
        "{mute}"
    );
    let after: NotifyState = r.t.state(SCRIPT).await;
    assert_eq!(before, after, "nothing changed");
    // WHEN the account is named (by its name, by its id, or the region alone)
    let acked = r.t.text("UBOB", "alarms ack api-5xx in staging").await;
    assert_eq!(
        acked,
        ":eyes: <@UBOB> acknowledged *api-5xx* (account 222222222222, us-west-2)."
    );
    let muted =
        r.t.text(ADMIN, "alarms mute api-5xx in eu-west-1 for 1h")
            .await;
    assert!(
        muted.contains("(account 111111111111, eu-west-1)"),
        "{muted}"
    );
    // THEN only that one changed
    let state: NotifyState = r.t.state(SCRIPT).await;
    let staging = r.record(&state, STAGING, "us-west-2", "api-5xx");
    let prod = r.record(&state, PROD, "eu-west-1", "api-5xx");
    assert!(staging.incident.unwrap().acked_by.is_some() && staging.muted.is_none());
    assert!(prod.incident.unwrap().acked_by.is_none() && prod.muted.is_some());
    // AND unmute without `in` finds the one muted
    let unmuted = r.t.text(ADMIN, "alarms unmute api-5xx").await;
    assert!(
        unmuted.contains("(account 111111111111, eu-west-1) is no longer muted"),
        "{unmuted}"
    );
    // AND a place with no such alarm says so
    let none = r.t.text("UBOB", "alarms ack api-5xx in us-east-2").await;
    assert!(
        none.contains("has no open incident to acknowledge there"),
        "{none}"
    );
    // AND a region that is no region says that, not "no incident there", for
    // each command that picks an alarm by place (tester 5, F15)
    let before: NotifyState = r.t.state(SCRIPT).await;
    for line in [
        "alarms ack api-5xx in us-west-3",
        "alarms mute api-5xx in us-west-3 for 1h",
        "alarms unmute api-5xx in us-west-3",
    ] {
        let typo = r.t.text(ADMIN, line).await;
        assert!(
            typo.contains("I know no AWS region `us-west-3`"),
            "{line}: {typo}"
        );
    }
    let after: NotifyState = r.t.state(SCRIPT).await;
    assert_eq!(after, before, "a refused place changes nothing");
}

#[test]
fn graph_looks_in_the_alarms_own_account_and_region_or_is_left_out() {
    let facts = |account: &str| event::AlarmFacts {
        name: "api-5xx".into(),
        account: account.into(),
        region: "eu-west-1".into(),
        metric: None,
        threshold: None,
        runbook: None,
        reason: String::new(),
    };
    let named = AccountBook::parse(&format!(
        r#"{{"prod": {{"role_arn": "arn:aws:iam::{PROD}:role/o"}}, "tools": {{}}}}"#
    ))
    .unwrap();
    let no_own = AccountBook::parse(&format!(
        r#"{{"prod": {{"role_arn": "arn:aws:iam::{PROD}:role/o"}}}}"#
    ))
    .unwrap();
    let place = render::graph_place;
    assert_eq!(
        place(&facts(PROD), &named).as_deref(),
        Some("in prod eu-west-1")
    );
    assert_eq!(
        place(&facts(STAGING), &named).as_deref(),
        Some("in tools eu-west-1")
    );
    assert_eq!(
        place(&facts(STAGING), &no_own),
        None,
        "an account not configured"
    );
    let empty = AccountBook::empty();
    assert_eq!(
        place(&facts(STAGING), &empty).as_deref(),
        Some("in eu-west-1")
    );
    // an account no command can name: no buttons at all
    assert_eq!(render::buttons(&facts("12345 for 7d"), &named), None);
    let without_graph = render::buttons(&facts(STAGING), &no_own).unwrap();
    assert_eq!(without_graph[0].text, "Acknowledge");
}
