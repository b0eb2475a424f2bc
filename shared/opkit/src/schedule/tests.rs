//! Tests of the schedule runtime: parsing, next times across DST, due entries,
//! refused runs, and runs nobody is there for.

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn schedules_parse_and_print_back() {
    for (text, shown) in [
        ("every 15m", "every 15m"),
        ("daily 09:00", "daily 09:00 UTC"),
        ("Weekdays 9:05", "weekdays 09:05 UTC"),
        ("fri,mon 17:30", "mon,fri 17:30 UTC"),
    ] {
        assert_eq!(
            When::parse(text, Tz::UTC).unwrap().to_string(),
            shown,
            "{text}"
        );
    }
    for bad in [
        "",
        "every",
        "every 30s",
        "daily",
        "daily 25:00",
        "funday 09:00",
        "hourly x",
    ] {
        assert!(When::parse(bad, Tz::UTC).is_err(), "{bad}");
    }
}

#[test]
fn an_interval_under_a_minute_says_so() {
    // GIVEN intervals on either side of a minute
    for (typed, too_often) in [
        ("every 30s", true),
        ("every 59s", true),
        ("every 60s", false),
        ("every 1m", false),
    ] {
        // WHEN parsed THEN only those under a minute are refused, and the
        // error names the minimum
        let parsed = When::parse(typed, Tz::UTC);
        assert_eq!(
            matches!(parsed, Err(WhenError::TooOften(_))),
            too_often,
            "{typed}: {parsed:?}"
        );
    }
    assert_eq!(
        When::parse("every 30s", Tz::UTC).unwrap_err().to_string(),
        "`every 30s` is too often: the shortest interval is one minute (`every 1m`), as often as schedules are checked"
    );
}

#[test]
fn a_bad_schedule_is_quoted_on_one_line() {
    let err = When::parse("daily\n`09:00`", Tz::UTC)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("`daily⏎ˋ09:00ˋ` is not a schedule"),
        "{err}"
    );
}

#[test]
fn next_times_skip_to_the_right_day() {
    // 2027-01-15 is a Friday
    let friday_8 = at("2027-01-15T08:00:00Z");
    let weekdays = When::parse("weekdays 09:00", Tz::UTC).unwrap();
    assert_eq!(weekdays.next_after(friday_8), at("2027-01-15T09:00:00Z"));
    assert_eq!(
        weekdays.next_after(at("2027-01-15T09:00:00Z")),
        at("2027-01-18T09:00:00Z"),
        "after Friday's run comes Monday's"
    );
    let mondays = When::parse("mon 07:00", Tz::UTC).unwrap();
    assert_eq!(
        mondays.next_after(at("2027-01-18T07:00:00Z")),
        at("2027-01-25T07:00:00Z")
    );
    assert_eq!(
        When::parse("every 15m", Tz::UTC)
            .unwrap()
            .next_after(friday_8),
        at("2027-01-15T08:15:00Z")
    );
}

#[test]
fn due_entries_are_taken_once_and_missed_runs_collapse() {
    let mut state = ScheduleState::default();
    let when = When::parse("every 1h", Tz::UTC).unwrap();
    state.entries.insert(
        "h".into(),
        Entry {
            name: "h".into(),
            when,
            channel: ChannelId::parse("C1").unwrap(),
            run_as: UserId::parse("U1").unwrap(),
            text: "queue status".into(),
            next_at: at("2027-01-15T08:00:00Z"),
            owner_told: false,
        },
    );
    assert!(take_due(&mut state, at("2027-01-15T07:59:00Z")).is_empty());
    assert_eq!(take_due(&mut state, at("2027-01-15T11:30:00Z")).len(), 1);
    assert!(take_due(&mut state, at("2027-01-15T11:31:00Z")).is_empty());
    assert_eq!(state.entries["h"].next_at, at("2027-01-15T12:30:00Z"));
}

fn entry(when: When, next_at: DateTime<Utc>) -> Entry {
    Entry {
        name: "s".into(),
        when,
        channel: ChannelId::parse("C1").unwrap(),
        run_as: UserId::parse("U1").unwrap(),
        text: "queue status".into(),
        next_at,
        owner_told: false,
    }
}

/// Runs the every-minute pass on a manual clock from `from` to `to` and
/// returns the instants the schedule fired at.
fn fired(when: When, from: &str, to: &str) -> Vec<DateTime<Utc>> {
    let clock = crate::clock::ManualClock::new(at(from));
    let mut state = ScheduleState::default();
    let first = when.next_after(at(from));
    state.entries.insert("s".into(), entry(when, first));
    let mut runs = Vec::new();
    while crate::clock::Clock::now(&clock) < at(to) {
        let now = crate::clock::Clock::now(&clock);
        runs.extend(take_due(&mut state, now).iter().map(|_| now));
        clock.advance(Duration::minutes(1));
    }
    runs
}

fn tz(name: &str) -> Tz {
    parse_zone(name).unwrap()
}

#[test]
fn a_daily_time_stays_local_across_dst_in_paris() {
    // GIVEN a daily 09:00 in Paris, the week DST begins (2027-03-28 02:00 → 03:00)
    let when = When::parse("daily 09:00", tz("Europe/Paris")).unwrap();
    assert_eq!(when.to_string(), "daily 09:00 Europe/Paris");
    // WHEN the clock runs minute by minute from Friday to Tuesday
    let runs = fired(when, "2027-03-26T00:00:00Z", "2027-03-30T12:00:00Z");
    // THEN it runs at 09:00 in Paris every day: 08:00 UTC before, 07:00 UTC after
    assert_eq!(
        runs,
        [
            at("2027-03-26T08:00:00Z"),
            at("2027-03-27T08:00:00Z"),
            at("2027-03-28T07:00:00Z"),
            at("2027-03-29T07:00:00Z"),
            at("2027-03-30T07:00:00Z"),
        ]
    );
    // AND back to 08:00 UTC when DST ends (2027-10-31 03:00 → 02:00)
    let when = When::parse("daily 09:00 Europe/Paris", Tz::UTC).unwrap();
    let runs = fired(when, "2027-10-30T00:00:00Z", "2027-11-01T12:00:00Z");
    assert_eq!(
        runs,
        [
            at("2027-10-30T07:00:00Z"),
            at("2027-10-31T08:00:00Z"),
            at("2027-11-01T08:00:00Z"),
        ]
    );
}

#[test]
fn weekdays_stay_local_across_dst_in_new_york() {
    // GIVEN weekdays 09:00 in New York around 2027-03-14 (DST begins, a Sunday)
    let when = When::parse("weekdays 09:00 America/New_York", Tz::UTC).unwrap();
    assert_eq!(when.to_string(), "weekdays 09:00 America/New_York");
    let runs = fired(when.clone(), "2027-03-12T00:00:00Z", "2027-03-16T00:00:00Z");
    // THEN Friday at 14:00 UTC (EST), no weekend, Monday at 13:00 UTC (EDT)
    assert_eq!(
        runs,
        [at("2027-03-12T14:00:00Z"), at("2027-03-15T13:00:00Z")]
    );
    // AND in November (DST ends 2027-11-07) Friday 13:00 UTC, Monday 14:00 UTC
    let runs = fired(when, "2027-11-05T00:00:00Z", "2027-11-09T00:00:00Z");
    assert_eq!(
        runs,
        [at("2027-11-05T13:00:00Z"), at("2027-11-08T14:00:00Z")]
    );
}

#[test]
fn a_time_the_clocks_skip_runs_at_the_jump_and_a_repeated_one_runs_once() {
    // 02:30 does not exist in Paris on 2027-03-28: it runs at 03:00 CEST
    let skipped = When::parse("daily 02:30 Europe/Paris", Tz::UTC).unwrap();
    let runs = fired(skipped, "2027-03-27T12:00:00Z", "2027-03-29T12:00:00Z");
    assert_eq!(
        runs,
        [at("2027-03-28T01:00:00Z"), at("2027-03-29T00:30:00Z")]
    );
    // 02:30 comes twice on 2027-10-31: it runs at the first
    let repeated = When::parse("daily 02:30 Europe/Paris", Tz::UTC).unwrap();
    let runs = fired(repeated, "2027-10-30T12:00:00Z", "2027-11-01T12:00:00Z");
    assert_eq!(
        runs,
        [at("2027-10-31T00:30:00Z"), at("2027-11-01T01:30:00Z")]
    );
}

#[test]
fn schedules_stored_without_a_zone_keep_running_in_utc() {
    // GIVEN an entry as the state held it before schedules had zones
    let stored = serde_json::json!({
        "entries": { "standup": {
            "name": "standup",
            "when": { "kind": "at", "days": [0, 1, 2, 3, 4], "hour": 9, "minute": 0 },
            "channel": "C9", "run_as": "UADMIN", "text": "queue status",
            "next_at": "2027-01-15T09:00:00Z"
        }}
    });
    // WHEN it is read
    let state: ScheduleState = serde_json::from_value(stored).unwrap();
    let when = &state.entries["standup"].when;
    // THEN it is 09:00 UTC, and says so
    assert_eq!(when.to_string(), "weekdays 09:00 UTC");
    assert_eq!(
        when.next_after(at("2027-01-15T09:00:00Z")),
        at("2027-01-18T09:00:00Z")
    );
    // AND written back it carries its zone by name
    let written = serde_json::to_value(&state).unwrap();
    assert_eq!(written["entries"]["standup"]["when"]["zone"], "UTC");
    let paris = When::parse("daily 09:00", tz("Europe/Paris")).unwrap();
    assert_eq!(
        serde_json::to_value(&paris).unwrap()["zone"],
        "Europe/Paris"
    );
}

#[tokio::test]
async fn the_worker_dms_a_schedules_owner_once_per_streak_of_refused_runs() {
    use std::sync::Arc;

    use crate::job::Job;
    use crate::slack::{MemoryChannelPoster, MemoryPoster};
    use crate::store::StateStore;
    use crate::worker::Worker;
    // GIVEN an hourly schedule of UA's in C1, as the worker gets its runs
    let t = crate::testing::TestBot::new();
    let mut state = ScheduleState::default();
    let mut standup = entry(When::parse("every 1h", Tz::UTC).unwrap(), t.now());
    standup.run_as = UserId::parse("UA").unwrap();
    state.entries.insert("s".into(), standup.clone());
    let encoded = serde_json::to_value(&state).unwrap();
    let encoded = crate::store::EncodedState::new(SCRIPT, encoded).unwrap();
    t.store.save(SCRIPT, &encoded, 0).await.unwrap();
    let channels = Arc::new(MemoryChannelPoster::new());
    let worker = Worker::new(
        t.bot.clone(),
        Arc::new(MemoryPoster::new()),
        Some(channels.clone()),
    );
    let run = |hours: i64| {
        let job = Job::scheduled(&standup, t.now() + Duration::hours(hours));
        let reply = posted_reply(Reply::text("3 in line"), "s", &standup.run_as);
        (job, reply)
    };
    let dms = || {
        channels
            .posts()
            .iter()
            .filter(|p| p.channel == "UA")
            .count()
    };
    // WHEN the channel refuses two runs
    channels.refuse("C1", Some("not_in_channel"));
    for hours in [0, 1] {
        let (job, reply) = run(hours);
        worker.deliver(&job, &reply).await.unwrap();
    }
    // THEN the owner got one DM
    assert_eq!(dms(), 1);
    // WHEN a run is posted, and the next refused
    channels.refuse("C1", None);
    let (job, reply) = run(2);
    worker.deliver(&job, &reply).await.unwrap();
    channels.refuse("C1", Some("not_in_channel"));
    let (job, reply) = run(3);
    worker.deliver(&job, &reply).await.unwrap();
    // THEN the new streak got a new DM
    assert_eq!(dms(), 2);
    let posted: Vec<_> = channels.posts().into_iter().map(|p| p.channel).collect();
    assert_eq!(posted, ["UA", "C1", "UA"]);
}

#[test]
fn a_zone_after_the_time_must_be_a_zone() {
    for bad in [
        "daily 09:00 Paris",
        "daily 09:00 Europe/Paris x",
        "every 15m Europe/Paris",
    ] {
        assert!(When::parse(bad, Tz::UTC).is_err(), "{bad}");
    }
    assert_eq!(
        When::parse("mon,fri 17:30 asia/tokyo", Tz::UTC)
            .unwrap()
            .to_string(),
        "mon,fri 17:30 Asia/Tokyo"
    );
}

/// A schedule of UADMIN's in C0PS running `text`, due at `now`, stored.
async fn store_schedule(t: &crate::testing::TestBot, text: &str) -> Entry {
    use crate::store::StateStore;
    let mut due = entry(When::parse("every 1h", Tz::UTC).unwrap(), t.now());
    due.run_as = UserId::parse("UADMIN").unwrap();
    due.channel = ChannelId::parse("C0PS").unwrap();
    due.text = text.into();
    let mut state = ScheduleState::default();
    state.entries.insert(due.name.clone(), due.clone());
    let encoded = serde_json::to_value(&state).unwrap();
    let encoded = crate::store::EncodedState::new(SCRIPT, encoded).unwrap();
    let version = t.store.load(SCRIPT).await.unwrap().version;
    t.store.save(SCRIPT, &encoded, version).await.unwrap();
    due
}

/// Commands nobody may run on a schedule, and the reason each run gives.
const UNATTENDED: &[(&str, &str)] = &[
    (
        "roles revoke <@UBOB> ops",
        "Not run: `roles revoke` asks for a confirmation, and nobody is there to click it on a schedule.",
    ),
    (
        "approve 0190f3a2",
        "Not run: `approve` decides a request, which only a person present may do.",
    ),
];

#[tokio::test]
async fn a_scheduled_run_of_a_gated_command_or_a_decision_is_refused_by_the_worker() {
    use std::sync::Arc;

    use crate::job::Job;
    use crate::slack::{MemoryChannelPoster, MemoryPoster};
    use crate::worker::Worker;
    for (text, refusal) in UNATTENDED {
        // GIVEN UBOB holds ops, and a schedule stored (before its command was
        // gated, or by hand) runs a command that needs a person
        let t = crate::testing::TestBot::new();
        t.say("UADMIN", "roles grant <@UBOB> ops").await;
        let due = store_schedule(&t, text).await;
        let channels = Arc::new(MemoryChannelPoster::new());
        let worker = Worker::new(
            t.bot.clone(),
            Arc::new(MemoryPoster::new()),
            Some(channels.clone()),
        );
        // WHEN the worker runs the schedule's job
        let reply = worker
            .process(&Job::scheduled(&due, t.now()))
            .await
            .unwrap();
        // THEN the run is refused with the reason, posted in the channel as any
        // refused run, and nothing is held or changed
        assert!(reply.text.as_str().starts_with(refusal), "{}", reply.text);
        let posted = channels.posts();
        assert_eq!(posted.len(), 1);
        assert!(posted[0].reply.text.as_str().starts_with(refusal));
        let pending: crate::engine::PendingState =
            t.state(crate::engine::gate::PENDING_SCRIPT).await;
        assert!(pending.requests.is_empty(), "{text} was held");
        assert!(t.text("UBOB", "whoami").await.contains("holding ops"));
    }
}

#[tokio::test]
async fn a_scheduled_run_of_a_gated_command_is_refused_by_the_expiry_pass() {
    // GIVEN UBOB holds ops and a due schedule would revoke it
    let t = crate::testing::TestBot::new();
    t.say("UADMIN", "roles grant <@UBOB> ops").await;
    store_schedule(&t, UNATTENDED[0].0).await;
    let poster = std::sync::Arc::new(crate::slack::MemoryChannelPoster::new());
    let expiry = crate::expiry::Expiry::new(t.bot.clone(), Some(poster.clone()));
    // WHEN the pass runs it (no queue: `opkit serve`)
    assert_eq!(expiry.run_once().await.unwrap().scheduled_runs, 1);
    // THEN its refusal is posted, and UBOB keeps ops
    let posts = poster.posts();
    assert!(
        posts[0].reply.text.as_str().starts_with(UNATTENDED[0].1),
        "{}",
        posts[0].reply.text
    );
    assert!(t.text("UBOB", "whoami").await.contains("holding ops"));
    // AND the audit trail says why
    let failed = t
        .audit(10)
        .await
        .into_iter()
        .find(|r| matches!(r.outcome, crate::audit::Outcome::Failed { .. }))
        .expect("the refusal is audited");
    assert_eq!(failed.command.as_deref(), Some("roles revoke"));
}
