//! Conformance checks that every [`Store`] implementation must pass.
//!
//! Each persister's tests call [`check_all`] on a fresh, empty store, so memory,
//! file and DynamoDB are held to exactly the same behaviour.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{Claim, CommittedReply, EncodedState, Store, StoreError};
use crate::access::Grant;
use crate::audit::{AuditRecord, Outcome};
use crate::ids::{Role, UserId};

/// Runs every check below on an empty store. Panics, naming the broken rule.
pub async fn check_all(store: &dyn Store) {
    check_state_versions(store).await;
    check_grants(store).await;
    check_audit(store).await;
    check_claims(store).await;
    check_committed_replies(store).await;
}

/// State: absent means version 0; saves bump the version; a stale save conflicts
/// and changes nothing.
pub async fn check_state_versions(store: &dyn Store) {
    let empty = store.load("contract").await.expect("load empty");
    assert_eq!(empty.version, 0, "unsaved state has version 0");
    assert!(empty.value.is_none(), "unsaved state has no value");

    let v1 = store
        .save(
            "contract",
            &EncodedState::new("contract", json!({"n": 1})).unwrap(),
            0,
        )
        .await
        .expect("first save");
    let loaded = store.load("contract").await.expect("load after save");
    assert_eq!(loaded.version, v1, "load returns the saved version");
    assert_eq!(
        loaded.value,
        Some(json!({"n": 1})),
        "load returns the saved value"
    );

    let stale = store
        .save(
            "contract",
            &EncodedState::new("contract", json!({"n": 99})).unwrap(),
            0,
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "a save at a stale version conflicts, got {stale:?}"
    );
    let v2 = store
        .save(
            "contract",
            &EncodedState::new("contract", json!({"n": 2})).unwrap(),
            v1,
        )
        .await
        .expect("save at current version");
    assert!(v2 > v1, "versions increase");
    let loaded = store.load("contract").await.expect("load");
    assert_eq!(
        loaded.value,
        Some(json!({"n": 2})),
        "the stale save changed nothing"
    );
    let other = store.load("other-script").await.expect("load other");
    assert!(other.value.is_none(), "scripts do not share state");
}

fn t(h: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time") + Duration::hours(h)
}

fn grant(user: &str, role: &str, ends: Option<i64>) -> Grant {
    Grant {
        id: Uuid::now_v7(),
        user: UserId::parse(user).expect("user"),
        role: Role::parse(role).expect("role"),
        granted_by: Some(UserId::parse("UADMIN").expect("user")),
        granted_at: t(0),
        starts_at: None,
        ends_at: ends.map(t),
        channel: None,
        start_announced: false,
    }
}

/// Grants: several grants of one role coexist (standing, timed, a future window),
/// each ended on its own; queries by user, role and end time; remove takes every
/// grant of the role and returns them; replace is a compare-and-swap on the whole
/// grant, so of many concurrent passes exactly one wins.
pub async fn check_grants(store: &dyn Store) {
    let alice = UserId::parse("UALICE").expect("user");
    let ops = Role::parse("ops").expect("role");
    let standing = grant("UALICE", "ops", None);
    let mut timed = grant("UALICE", "ops", Some(2));
    timed.granted_at = t(0) + Duration::seconds(1);
    let mut window = grant("UALICE", "ops", Some(30));
    window.granted_at = t(0) + Duration::seconds(2);
    window.starts_at = Some(t(28));
    for g in [&standing, &timed, &window] {
        store.put_grant(g).await.expect("put");
    }
    store
        .put_grant(&grant("UALICE", "dba", None))
        .await
        .expect("put");
    store
        .put_grant(&grant("UBOB", "ops", Some(1)))
        .await
        .expect("put");
    let same = store.put_grant(&standing).await;
    assert!(
        matches!(same, Err(StoreError::Conflict { .. })),
        "a grant never overwrites the same grant: {same:?}"
    );

    let mine = store.grants_for(&alice).await.expect("by user");
    assert_eq!(mine.len(), 4, "three grants of ops coexist beside dba");
    let holders = store.grants_with_role(&ops).await.expect("by role");
    assert_eq!(holders.len(), 4, "every grant of ops is listed");
    assert_eq!(store.all_grants().await.expect("all").len(), 5);

    let ended = store.grants_ended_by(t(2)).await.expect("ended");
    let mut ended: Vec<(String, Option<DateTime<Utc>>)> = ended
        .iter()
        .map(|g| (g.user.to_string(), g.ends_at))
        .collect();
    ended.sort();
    assert_eq!(
        ended,
        [("UALICE".into(), Some(t(2))), ("UBOB".into(), Some(t(1)))],
        "only the grants whose windows closed, each on its own"
    );

    // replace_grant acts only on the very grant, as it was read
    assert!(
        store.replace_grant(&timed, None).await.expect("end"),
        "the timed grant ends"
    );
    assert!(
        !store.replace_grant(&timed, None).await.expect("end again"),
        "a second pass finds it gone"
    );
    let mut announced = window.clone();
    announced.start_announced = true;
    let wins = [
        store
            .replace_grant(&window, Some(&announced))
            .await
            .expect("announce"),
        store
            .replace_grant(&window, Some(&announced))
            .await
            .expect("announce"),
    ];
    assert_eq!(wins, [true, false], "a window's start is claimed once");
    let mine = store.grants_for(&alice).await.expect("by user");
    assert_eq!(mine.len(), 3, "the standing grant and the window remain");
    assert!(
        mine.iter()
            .any(|g| g.starts_at == Some(t(28)) && g.start_announced),
        "the announced window is stored"
    );

    let mut removed = store.remove_grants(&alice, &ops).await.expect("remove");
    removed.sort_by_key(|g| g.granted_at);
    assert_eq!(
        removed,
        [standing, announced],
        "revoke takes every grant of the role"
    );
    let again = store
        .remove_grants(&alice, &ops)
        .await
        .expect("remove twice");
    assert!(again.is_empty(), "removing twice finds nothing");
    let left = store.grants_for(&alice).await.expect("by user");
    assert_eq!(left.len(), 1, "dba is untouched");
    assert_eq!(left[0].role.as_str(), "dba");
}

/// Audit: newest first, filtered by user, limited.
pub async fn check_audit(store: &dyn Store) {
    let correlation_id = Uuid::new_v4();
    for (i, user) in ["UA", "UB", "UA", "UA"].iter().enumerate() {
        let record = AuditRecord {
            id: Uuid::new_v4(),
            correlation_id,
            at: t(i as i64),
            user: UserId::parse(user).expect("user"),
            channel: None,
            team: None,
            text: format!("cmd {i}"),
            command: None,
            outcome: Outcome::Succeeded,
        };
        store.append(&record).await.expect("append");
    }
    let all = store.recent(None, 10).await.expect("recent");
    let texts: Vec<&str> = all.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["cmd 3", "cmd 2", "cmd 1", "cmd 0"], "newest first");
    let ua = UserId::parse("UA").expect("user");
    let mine = store.recent(Some(&ua), 2).await.expect("recent by user");
    let texts: Vec<&str> = mine.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["cmd 3", "cmd 2"], "filtered by user and limited");
}

/// Job claims: one holder at a time; a lapsed lease or a release frees the job; a
/// finished job is never claimed again while it is kept.
pub async fn check_claims(store: &dyn Store) {
    let lease = Duration::minutes(5);
    let keep = Duration::days(1);
    let claim = |job: &'static str, at: DateTime<Utc>| store.claim(job, at, lease);

    assert_eq!(claim("job-1", t(0)).await.expect("claim"), Claim::Acquired);
    let held = claim("job-1", t(0) + Duration::minutes(1))
        .await
        .expect("claim");
    assert_eq!(
        held,
        Claim::HeldElsewhere {
            until: t(0) + lease
        },
        "a second claim within the lease is refused"
    );
    assert_eq!(
        claim("job-2", t(0)).await.expect("claim"),
        Claim::Acquired,
        "jobs are claimed independently"
    );

    let lapsed = claim("job-1", t(0) + lease).await.expect("claim");
    assert_eq!(lapsed, Claim::Acquired, "a lapsed lease can be taken over");

    store.release("job-2").await.expect("release");
    assert_eq!(
        claim("job-2", t(0) + Duration::seconds(1))
            .await
            .expect("claim"),
        Claim::Acquired,
        "a released job can be claimed at once"
    );

    let finished_at = t(0) + Duration::minutes(6);
    store
        .finish("job-1", finished_at, keep)
        .await
        .expect("finish");
    store.release("job-1").await.expect("release after finish");
    for later in [Duration::minutes(1), keep - Duration::seconds(1)] {
        let again = claim("job-1", finished_at + later).await.expect("claim");
        assert_eq!(again, Claim::AlreadyDone, "a finished job never runs again");
    }
    assert_eq!(
        claim("job-1", finished_at + keep).await.expect("claim"),
        Claim::Acquired,
        "after `keep` the job is forgotten, as TTL would"
    );

    store
        .release("job-never-seen")
        .await
        .expect("release unknown");
}

/// A reply committed with a job's "done" mark comes back to every later claim
/// ([`Claim::Answered`], naming its delivery) until `finish` without one drops
/// it; the job stays done either way, and only for `keep`.
pub async fn check_committed_replies(store: &dyn Store) {
    let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let (lease, keep) = (Duration::minutes(5), Duration::days(4));
    let committed = CommittedReply {
        delivery: "message-1".into(),
        reply: r#"{"text":"done"}"#.into(),
    };
    assert_eq!(
        store.claim("job-r", t0, lease).await.expect("claim"),
        Claim::Acquired
    );
    store
        .finish_with_reply("job-r", t0, keep, Some(&committed))
        .await
        .expect("finish with a reply");
    for later in [Duration::seconds(1), keep - Duration::seconds(1)] {
        assert_eq!(
            store
                .claim("job-r", t0 + later, lease)
                .await
                .expect("claim"),
            Claim::Answered(committed.clone()),
            "a committed reply comes back, as committed, to a later claim"
        );
    }
    store
        .finish("job-r", t0 + Duration::seconds(2), keep)
        .await
        .expect("finish again, the reply posted");
    assert_eq!(
        store
            .claim("job-r", t0 + Duration::seconds(3), lease)
            .await
            .expect("claim"),
        Claim::AlreadyDone,
        "finish without a reply drops the committed one; the job stays done"
    );
}
