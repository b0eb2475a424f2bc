//! The notify state is bounded by bytes as well as by count, so that the next
//! change always fits (tester G17: ~266 alarms with long names and reasons
//! filled it, and from then on every new alarm's notification failed).

use chrono::{DateTime, Duration, Utc};
use opkit::testing::ADMIN;
use serde_json::Value;

use super::state::{NOTIFY_BUDGET, NotifyState};
use super::tests::{change, rig};

/// `change`, with the tester's long reason and a long link in the description
/// (within CloudWatch's limits: reason 1,023, description 1,024 characters).
fn long_change(name: &str, previous: &str, state: &str, at: DateTime<Utc>) -> String {
    let mut event: Value = serde_json::from_str(&change(name, previous, state, at)).unwrap();
    event["detail"]["state"]["reason"] = "R".repeat(1000).into();
    event["detail"]["configuration"]["description"] =
        format!("runbook https://wiki.example.com/{}", "p".repeat(450)).into();
    event.to_string()
}

fn long_name(i: usize) -> String {
    format!("n{i:04}-{}", "x".repeat(240))
}

fn state_len(state: &NotifyState) -> usize {
    serde_json::to_string(state).unwrap().len()
}

#[tokio::test]
async fn a_flood_of_long_alarms_never_stops_the_next_notification() {
    // GIVEN 300 alarms with long names, reasons and runbook links, all firing
    let r = rig();
    let at = r.t.now() - Duration::hours(2);
    for i in 0..300 {
        let at = at + Duration::seconds(i as i64);
        let handled = r
            .notifier
            .handle(&long_change(&long_name(i), "OK", "ALARM", at))
            .await;
        // THEN each is handled (the 267th failed: "the state of `notify` would be
        // 358921 bytes, over the limit")
        assert!(handled.is_ok(), "alarm {i}: {handled:?}");
    }
    let state: NotifyState = r.t.state("notify").await;
    assert!(state_len(&state) <= NOTIFY_BUDGET, "{}", state_len(&state));
    // AND the newest are still tracked, the oldest forgotten
    assert!(state.alarms.keys().any(|k| k.ends_with(&long_name(299))));
    assert!(!state.alarms.keys().any(|k| k.ends_with(&long_name(0))));
    // WHEN a channel subscribes and ordinary alarms fire
    r.t.text(ADMIN, "alarms subscribe all").await;
    let later = r.t.now();
    for n in ["a1", "a2", "a3", "a4", "a5"] {
        let out = r
            .notify(&change(&format!("web-{n}-cpu-high"), "OK", "ALARM", later))
            .await;
        // THEN each is posted
        assert_eq!(out.posted, 1, "{out:?}");
    }
    // AND can be acknowledged
    let acked = r.t.text(ADMIN, "alarms ack web-a1-cpu-high").await;
    assert!(acked.contains("acknowledged"), "{acked}");
}

#[tokio::test]
async fn idle_alarms_make_room_before_an_open_incident_is_forgotten() {
    // GIVEN a posted open incident, the oldest change of all
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe api-").await;
    let at = r.t.now() - Duration::hours(2);
    let out = r.notify(&change("api-5xx", "OK", "ALARM", at)).await;
    assert_eq!(out.posted, 1);
    // WHEN a hundred and more alarms whose reasons take three bytes a
    // character change to OK after it (no incident: idle)
    for i in 0..130 {
        let at = at + Duration::seconds(1 + i as i64);
        let mut event: Value =
            serde_json::from_str(&long_change(&long_name(i), "INSUFFICIENT_DATA", "OK", at))
                .unwrap();
        event["detail"]["state"]["reason"] = "€".repeat(1000).into();
        r.notify(&event.to_string()).await;
    }
    let state: NotifyState = r.t.state("notify").await;
    assert!(state_len(&state) <= NOTIFY_BUDGET);
    assert!(state.alarms.len() < 131, "some made room");
    // THEN the open incident is still there: its OK goes into its thread
    let out = r.notify(&change("api-5xx", "ALARM", "OK", r.t.now())).await;
    assert_eq!(out.posted, 1, "{out:?}");
    let posts = r.posts.posts();
    assert!(
        posts
            .iter()
            .any(|p| p.thread_ts.is_some()
                && p.reply.text.as_str().contains("*api-5xx* is back to OK")),
        "{posts:?}"
    );
}

#[test]
fn the_alarm_just_changed_is_never_the_one_dropped() {
    // GIVEN a state over its budget whose only alarm is the one just changed
    let mut state = NotifyState::default();
    let record: super::state::AlarmRecord = serde_json::from_value(serde_json::json!({
        "state": "ALARM",
        "at": "2026-11-30T09:00:00Z",
        "facts": {"name": "a", "account": "1", "region": "r", "reason": "x".repeat(NOTIFY_BUDGET)},
    }))
    .unwrap();
    state.alarms.insert("1/r/a".into(), record);
    // WHEN it is pruned, keeping it
    state.prune(Some("1/r/a"), Utc::now());
    // THEN it is kept (the store refuses the save, as it must)
    assert_eq!(state.alarms.len(), 1);
}

fn subscription(channel: &str, prefix: &str, by: &str) -> super::state::Subscription {
    super::state::Subscription {
        channel: opkit::ids::ChannelId::parse(channel).unwrap(),
        prefix: Some(prefix.to_string()),
        states: [super::event::AlarmState::Alarm].into(),
        by: opkit::ids::UserId::parse(by).unwrap(),
    }
}

#[test]
fn subscriptions_are_bounded_per_person_and_by_bytes_and_leave_room_for_alarms() {
    use super::state::{MAX_SUBSCRIPTIONS_PER_USER, SUBSCRIPTIONS_BUDGET};
    // GIVEN one person who made the most subscriptions one may
    let mut state = NotifyState::default();
    for i in 0..MAX_SUBSCRIPTIONS_PER_USER {
        let channel = format!("C{:04}", i / 10);
        state
            .add_subscription(subscription(&channel, &format!("p{i}-"), "UOPS"))
            .unwrap();
    }
    // WHEN they make another THEN it is refused, and someone else's is not
    let why = state
        .add_subscription(subscription("C9999", "more-", "UOPS"))
        .unwrap_err();
    assert!(
        why.as_str().contains("You made 50 subscriptions"),
        "{why:?}"
    );
    state
        .add_subscription(subscription("C9999", "more-", "UOPS2"))
        .unwrap();
    // AND prefixes as long as alarm names fill at most their byte budget,
    // refused to whoever would pass it
    let mut state = NotifyState::default();
    let mut refused = None;
    for i in 0..200 {
        let channel = format!("C{:04}", i / 10);
        let by = format!("U{:04}", i / 40);
        let prefix = format!("{i:03}{}", "€".repeat(252));
        if let Err(why) = state.add_subscription(subscription(&channel, &prefix, &by)) {
            refused = Some(why);
            break;
        }
    }
    let why = refused.expect("the byte budget refuses one");
    assert!(why.as_str().contains("use a shorter prefix"), "{why:?}");
    assert!(serde_json::to_string(&state.subscriptions).unwrap().len() <= SUBSCRIPTIONS_BUDGET);
    const { assert!(SUBSCRIPTIONS_BUDGET < NOTIFY_BUDGET / 4) };
}
