//! Tests of the room held requests share: caps that refuse the one who passes
//! them, never everyone else.

use chrono::{Duration, TimeZone};

use super::*;
use crate::engine::bot::Request;
use crate::engine::command::{Caller, CommandError, Ctx};
use crate::engine::gate::Decision;
use crate::slack::Reply;
use crate::testing::TestBot;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
}

/// A request of `user` asked at `at`, its summary `summary_len` characters long.
fn held(user: &str, at: DateTime<Utc>, summary_len: usize) -> Pending {
    Pending {
        request: Request::new(
            Caller::user(UserId::parse(user).unwrap()),
            "shout everywhere hello",
        ),
        command: "shout everywhere".into(),
        approval: true,
        summary: crate::mrkdwn!(
            "{}",
            crate::slack::mrkdwn::UserText::new("x".repeat(summary_len))
        ),
        expires_at: at + PENDING_FOR,
        beneficiaries: vec![],
        beneficiaries_unlisted: 0,
        beneficiaries_named: None,
        also_approved_by: vec![],
        bound: Default::default(),
        gate: None,
    }
}

fn count(state: &PendingState, user: &str) -> usize {
    state.held_by(&UserId::parse(user).unwrap())
}

#[test]
fn one_user_holds_at_most_the_cap_and_the_next_is_refused_naming_it() {
    // GIVEN a user holding the most requests one may
    let mut state = PendingState::default();
    for i in 0..MAX_HELD_PER_USER {
        state
            .admit(format!("flood{i:02}"), held("UFLOOD", t0(), 10), t0())
            .unwrap();
    }
    // WHEN they ask once more
    let before = state.clone();
    let why = state
        .admit("flood99".into(), held("UFLOOD", t0(), 10), t0())
        .unwrap_err();
    // THEN it is refused, naming the cap and how to clear it, and nothing changed
    let why = why.as_str();
    assert!(
        why.contains("You already have 10 requests waiting"),
        "{why}"
    );
    assert!(why.contains("`approvals`"), "{why}");
    assert!(why.contains("`cancel &lt;id&gt;`"), "{why}");
    assert_eq!(state, before);
    // AND anyone else is still held
    assert!(
        state
            .admit("victim".into(), held("UVICTIM", t0(), 10), t0())
            .unwrap()
            .is_empty()
    );
    // AND once the flooder's requests expire, they may ask again
    let later = t0() + PENDING_FOR + Duration::seconds(1);
    state
        .admit("flood99".into(), held("UFLOOD", later, 10), later)
        .unwrap();
    assert_eq!(count(&state, "UFLOOD"), 1);
}

#[test]
fn a_request_too_large_to_hold_is_refused_and_nothing_changes() {
    let mut state = PendingState::default();
    let why = state
        .admit("big".into(), held("UBOB", t0(), MAX_HELD_BYTES), t0())
        .unwrap_err();
    assert!(
        why.as_str().contains("too large to hold"),
        "{}",
        why.as_str()
    );
    assert!(state.requests.is_empty());
    // one just under the cap is held
    state
        .admit(
            "fits".into(),
            held("UBOB", t0(), MAX_HELD_BYTES - 1024),
            t0(),
        )
        .unwrap();
}

#[test]
fn a_flood_held_before_the_cap_gives_way_to_a_newcomer() {
    // GIVEN the tester's state: one user holding 540 requests, the room full
    // (held before the per-user cap, or by many accounts of one person)
    let mut state = PendingState::default();
    for i in 0..540 {
        let at = t0() + Duration::milliseconds(i);
        state
            .requests
            .insert(format!("flood{i:03}"), held("UFLOOD", at, 420));
    }
    assert!(json_len(&state) > PENDING_BUDGET);
    // WHEN someone else asks
    let dropped = state
        .admit("victim".into(), held("UVICTIM", t0(), 10), t0())
        .unwrap();
    // THEN they are held, and the flooder's oldest requests made room
    assert!(state.requests.contains_key("victim"));
    assert!(json_len(&state) <= PENDING_BUDGET);
    assert!(!dropped.is_empty());
    assert_eq!(dropped[0].0, "flood000");
    assert!(dropped.iter().all(
        |(id, p)| p.request.caller.user.as_str() == "UFLOOD" && state.dropped.contains_key(id)
    ));
    // AND the state is one a persister can save
    crate::store::EncodedState::new("opkit-pending", serde_json::to_value(&state).unwrap())
        .unwrap();
}

#[test]
fn when_the_room_is_full_the_one_holding_the_most_is_refused_not_someone_else() {
    // GIVEN a room filled by many users holding two requests each, large ones
    let mut state = PendingState::default();
    let size = json_len(&held("U00000", t0(), 7 * 1024)) + 64;
    let mut n = 0;
    while json_len(&state) + size <= PENDING_BUDGET {
        let user = format!("U{:05}", n / 2);
        state
            .admit(
                format!("{user}-{}", n % 2),
                held(&user, t0(), 7 * 1024),
                t0(),
            )
            .unwrap();
        n += 1;
    }
    // WHEN one of them asks for a third, large
    let before = state.clone();
    let why = state
        .admit("U00000-2".into(), held("U00000", t0(), 7 * 1024), t0())
        .unwrap_err();
    // THEN they are refused (nobody holds more), and nothing changed
    assert!(
        why.as_str()
            .contains("nobody holds more of them than you (3 with this one)"),
        "{}",
        why.as_str()
    );
    assert_eq!(state, before);
    // WHEN a newcomer asks instead
    let dropped = state
        .admit("UNEW-0".into(), held("UNEW", t0(), 7 * 1024), t0())
        .unwrap();
    // THEN they are held: a request of someone holding two made room
    assert!(state.requests.contains_key("UNEW-0"));
    assert_eq!(dropped.len(), 1);
    assert!(json_len(&state) <= PENDING_BUDGET);
}

#[test]
fn settled_and_dropped_ids_are_remembered_up_to_a_cap() {
    let mut state = PendingState::default();
    for i in 0..MAX_REMEMBERED + 50 {
        state.remember_settled(&format!("{i:05}"), t0() + Duration::milliseconds(i as i64));
    }
    assert_eq!(state.settled.len(), MAX_REMEMBERED);
    // the soonest forgotten went first
    assert!(!state.settled.contains_key("00000"));
    assert!(
        state
            .settled
            .contains_key(&format!("{:05}", MAX_REMEMBERED + 49))
    );
}

/// A bot whose `ask <text>` asks for an approval by an admin, by anyone.
fn asking() -> TestBot {
    use crate::engine::command::{Command, Script};
    async fn ask(ctx: &mut Ctx<()>) -> Result<Reply, CommandError> {
        ctx.confirm("It would do nothing.")?;
        Ok(Reply::text("done"))
    }
    let admin = crate::access::Access::role(crate::ids::Role::admin());
    let script = Script::<()>::new("ask").command(
        Command::new("ask")
            .usage("<text>")
            .approval(admin)
            .handler(|ctx| Box::pin(ask(ctx))),
    );
    TestBot::with(|b| b.script(script))
}

#[tokio::test]
async fn one_user_asking_again_and_again_never_stops_anothers_approval() {
    // GIVEN a user who asks and asks (the tester's flood: 900 asks)
    let t = asking();
    let mut refused = None;
    for i in 0..40 {
        let reply = t
            .say("UFLOOD", &format!("ask {i} {}", "A".repeat(225)))
            .await;
        if !reply.text.as_str().contains("asks to run") {
            refused.get_or_insert((i, reply.text.as_str().to_string()));
        }
    }
    // THEN from the 11th on they are refused, told the cap and how to clear it
    let (first, why) = refused.expect("the flood is capped");
    assert_eq!(first, MAX_HELD_PER_USER);
    assert!(
        why.contains("You already have 10 requests waiting"),
        "{why}"
    );
    // AND someone else's request is still held, and approved
    let prompt = t.say("UBOB", "ask deploy").await;
    assert!(
        prompt.text.as_str().contains("asks to run"),
        "{}",
        prompt.text
    );
    let done = t.click("UADMIN", &prompt, Decision::Approve).await;
    assert!(done.text.as_str().contains("done"), "{}", done.text);
    let state: PendingState = t.state(super::super::PENDING_SCRIPT).await;
    assert_eq!(count(&state, "UFLOOD"), MAX_HELD_PER_USER);
}

#[tokio::test]
async fn a_request_dropped_to_make_room_says_so_when_clicked() {
    // GIVEN a flood stored before the cap, filling the room
    let t = asking();
    let first = t.say("UFLOOD", "ask 0").await;
    let mut state: PendingState = t.state(super::super::PENDING_SCRIPT).await;
    let template = state.requests.values().next().unwrap().clone();
    let mut i = 0;
    while json_len(&state) <= PENDING_BUDGET {
        i += 1;
        let mut p = template.clone();
        p.summary = crate::mrkdwn!("{}", crate::slack::mrkdwn::UserText::new("y".repeat(400)));
        p.expires_at += Duration::milliseconds(i);
        state.requests.insert(format!("flood{i:04}"), p);
    }
    use crate::store::StateStore;
    let store = &t.store;
    let loaded = store.load(super::super::PENDING_SCRIPT).await.unwrap();
    let encoded = crate::store::EncodedState::new(
        super::super::PENDING_SCRIPT,
        serde_json::to_value(&state).unwrap(),
    )
    .unwrap();
    store
        .save(super::super::PENDING_SCRIPT, &encoded, loaded.version)
        .await
        .unwrap();
    // WHEN someone else asks
    let prompt = t.say("UBOB", "ask deploy").await;
    // THEN they are held, the flooder's oldest was dropped, and its click says why
    assert!(
        prompt.text.as_str().contains("asks to run"),
        "{}",
        prompt.text
    );
    let clicked = t.click("UADMIN", &first, Decision::Approve).await;
    assert!(
        clicked
            .text
            .as_str()
            .starts_with("This request was dropped"),
        "{}",
        clicked.text
    );
    // AND the drop is in the audit trail
    let audit = t.audit(50).await;
    assert!(
        audit
            .iter()
            .any(|r| r.user.as_str() == "UFLOOD" && format!("{:?}", r.outcome).contains("dropped")),
        "{audit:?}"
    );
}
