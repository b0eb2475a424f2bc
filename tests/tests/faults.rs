//! Faults on the deployed path (emulator), injected where they happen: DynamoDB
//! throttling and 5xx by a proxy in front of the emulator (so the SDK's own retry
//! strategy meets them), store failures in the middle of an expiry pass at the
//! store port. Slack's 429 and 5xx are in `slack_poster.rs`.
//! Run through `bash infra/test.sh` (it starts the emulator).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::{RetryConfig, RetryMode};
use chrono::Duration as Span;
use opkit::access::Grant;
use opkit::audit::{AuditRecord, Outcome};
use opkit::ids::{ChannelId, Role, UserId};
use opkit::job::QueueMessage;
use opkit::store::{AuditLog, GrantStore, StateStore};
use opkit_tests::fault_proxy::{FaultProxy, ProxyFault};
use opkit_tests::faults::{Fault, FaultyStore, Op};
use opkit_tests::serverless::{ADMIN, Stack};

const WAIT: Duration = Duration::from_secs(10);

/// The SDK's default strategy, as deployed (standard, three attempts, exponential
/// backoff with jitter), with a fiftieth of its initial backoff so tests stay fast.
fn fast_sdk_retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(20))
}

/// A stack whose bot has `tally`, whose AWS calls go through `proxy`, and whose
/// store is wrapped for fault injection at the port.
async fn stack(proxy: &FaultProxy) -> (Stack, Arc<FaultyStore>) {
    let slot = Arc::new(Mutex::new(None));
    let keep = slot.clone();
    let stack = Stack::builder()
        .bot(|b| b.script(opkit_tests::tally::script()))
        .aws_endpoint(proxy.url())
        .aws_retries(fast_sdk_retries())
        .store(move |store| {
            let faulty = FaultyStore::new(store);
            *keep.lock().unwrap() = Some(faulty.clone());
            faulty
        })
        .start()
        .await;
    let faulty = slot.lock().unwrap().take().unwrap();
    (stack, faulty)
}

/// Runs a slash command through ingress, SQS and the worker; returns the reply.
async fn run(stack: &Stack, user: &str, text: &str, reply_to: &str) -> String {
    let message = stack.queue_command(user, text, reply_to).await;
    let before = stack.slack.count();
    assert!(stack.work(&[message]).await.batch_item_failures.is_empty());
    let posted = stack.slack.wait_for(before + 1, WAIT).await;
    posted[before].json()["text"].as_str().unwrap().to_string()
}

/// The audit outcomes of one command's records, oldest first.
async fn outcomes(stack: &Stack, text: &str) -> Vec<(String, String)> {
    let mut records: Vec<AuditRecord> = stack.store.recent(None, 100).await.unwrap();
    records.reverse();
    records
        .into_iter()
        .filter(|r| r.text == text)
        .map(|r| {
            let detail = match &r.outcome {
                Outcome::Failed { error } => error.clone(),
                _ => String::new(),
            };
            (r.outcome.name().to_string(), detail)
        })
        .collect()
}

#[tokio::test]
async fn throttling_and_a_5xx_are_retried_with_backoff_and_the_command_runs_once() {
    // The deployed worker uses the SDK's default strategy (the template sets no
    // AWS_MAX_ATTEMPTS or AWS_RETRY_MODE): standard, three attempts, 1 s backoff base.
    if ["AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"]
        .iter()
        .all(|v| std::env::var_os(v).is_none())
    {
        let deployed = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let deployed = deployed.retry_config().unwrap();
        let got = (
            deployed.mode(),
            deployed.max_attempts(),
            deployed.initial_backoff(),
        );
        assert_eq!(got, (RetryMode::Standard, 3, Duration::from_secs(1)));
    }
    // GIVEN a table that throttles the save of the count, then fails it with a 500
    let proxy = FaultProxy::start().await;
    let (stack, _) = stack(&proxy).await;
    proxy.inject("PutItem", Some("STATE#tally"), 0, 1, ProxyFault::Throttle);
    proxy.inject(
        "PutItem",
        Some("STATE#tally"),
        0,
        1,
        ProxyFault::ServerError(500),
    );
    // WHEN a count runs
    let reply = run(&stack, "U1", "tally hits", "t").await;
    // THEN the SDK tried three times, waiting between tries, and the third went through
    let saves = proxy.calls("PutItem", "STATE#tally");
    let faults: Vec<_> = saves.iter().map(|s| s.fault).collect();
    assert_eq!(
        faults,
        [
            Some(ProxyFault::Throttle),
            Some(ProxyFault::ServerError(500)),
            None
        ]
    );
    let waits: Vec<Duration> = saves.windows(2).map(|w| w[1].at - w[0].at).collect();
    println!("SDK retries of a throttled, then failing save: waited {waits:?}");
    // AND the count ran once, said so, and the audit trail agrees
    assert_eq!(reply, "<@U1> counted *hits* (1).");
    let state = stack.store.load("tally").await.unwrap();
    assert_eq!(
        (state.version, state.value.unwrap()["hits"].as_u64()),
        (1, Some(1))
    );
    assert_eq!(
        outcomes(&stack, "tally hits").await,
        [
            ("requested".into(), String::new()),
            ("succeeded".into(), String::new())
        ]
    );
}

#[tokio::test]
async fn a_table_that_keeps_throttling_gets_the_user_a_clear_try_again_and_changes_nothing() {
    let proxy = FaultProxy::start().await;
    let (stack, _) = stack(&proxy).await;
    // GIVEN reads of the count's state that are always throttled
    proxy.inject(
        "GetItem",
        Some("STATE#tally"),
        0,
        usize::MAX,
        ProxyFault::ThroughputExceeded,
    );
    // WHEN a count runs
    let reply = run(&stack, "U1", "tally hits", "read").await;
    // THEN the SDK gave up after its three attempts and the user is told to try again
    assert_eq!(proxy.calls("GetItem", "STATE#tally").len(), 3);
    assert!(
        reply.starts_with("Sorry, the bot's store is not answering right now"),
        "{reply}"
    );
    assert!(reply.contains("please try again in a moment"), "{reply}");
    // AND nothing changed, and the audit trail says it failed, and why
    assert_eq!(stack.store.load("tally").await.unwrap().version, 0);
    let audited = outcomes(&stack, "tally hits").await;
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert_eq!(audited[1].0, "failed");
    assert!(
        audited[1]
            .1
            .contains("ProvisionedThroughputExceededException"),
        "{audited:?}"
    );

    // GIVEN saves that always fail with a 503 instead
    proxy.heal();
    proxy.inject(
        "PutItem",
        Some("STATE#tally"),
        0,
        usize::MAX,
        ProxyFault::ServerError(503),
    );
    let reply = run(&stack, "U2", "tally misses", "write").await;
    assert_eq!(proxy.calls("PutItem", "STATE#tally").len(), 3);
    assert!(reply.contains("please try again in a moment"), "{reply}");
    assert_eq!(stack.store.load("tally").await.unwrap().version, 0);
    let audited = outcomes(&stack, "tally misses").await;
    assert_eq!(
        audited.iter().map(|o| o.0.as_str()).collect::<Vec<_>>(),
        ["requested", "failed"]
    );
    assert!(
        audited[1].1.contains("503") || audited[1].1.contains("InternalServerError"),
        "{audited:?}"
    );

    // AND once the table answers again, the next count goes through
    proxy.heal();
    assert_eq!(
        run(&stack, "U3", "tally hits", "later").await,
        "<@U3> counted *hits* (1)."
    );
}

#[tokio::test]
async fn a_job_that_cannot_be_claimed_is_retried_by_sqs_and_its_user_told_once() {
    let proxy = FaultProxy::start().await;
    let (stack, _) = stack(&proxy).await;
    let message = stack.queue_command("U1", "tally hits", "claim").await;
    // GIVEN a table that throttles every claim (and every other write of a job record)
    proxy.inject("PutItem", Some("JOB#"), 0, usize::MAX, ProxyFault::Throttle);
    // WHEN SQS delivers the message three times (its maxReceiveCount)
    let mut failures = Vec::new();
    for receive_count in 1..=3 {
        let delivery = QueueMessage {
            receive_count,
            ..message.clone()
        };
        failures.push(stack.work(&[delivery]).await.batch_item_failures.len());
    }
    // THEN each delivery is handed back to SQS (to the DLQ after the third) …
    assert_eq!(failures, [1, 1, 1]);
    assert_eq!(
        proxy.calls("PutItem", "JOB#").len(),
        9,
        "three SDK attempts each"
    );
    // … nothing ran, and the user heard once, on the last delivery, to try again
    assert_eq!(stack.store.load("tally").await.unwrap().version, 0);
    let told = stack.slack.posts_to("/response/claim");
    assert_eq!(told.len(), 1);
    let text = told[0].json()["text"].as_str().unwrap();
    assert!(
        text.starts_with("Sorry, I could not run `tally hits`: the bot's store is unavailable. Please try again later"),
        "{text}"
    );
}

#[tokio::test]
async fn a_save_whose_answer_was_lost_is_not_applied_twice() {
    // GIVEN a table that applies the count's save but whose answer is lost (a 500
    // after the write): the SDK sends the same conditional save again
    let proxy = FaultProxy::start().await;
    let (stack, store) = stack(&proxy).await;
    proxy.inject(
        "PutItem",
        Some("STATE#tally"),
        0,
        1,
        ProxyFault::LostAnswer(500),
    );
    // WHEN a count runs
    let reply = run(&stack, "U1", "tally hits", "t").await;
    // THEN it counted once, said so, and the audit trail agrees with the state
    let state = stack.store.load("tally").await.unwrap();
    assert_eq!(state.value.unwrap()["hits"], 1, "counted once");
    assert_eq!(state.version, 1);
    assert_eq!(reply, "<@U1> counted *hits* (1).");
    assert_eq!(store.conflicts(), 0, "its own write is not someone else's");
    assert_eq!(
        outcomes(&stack, "tally hits").await,
        [
            ("requested".into(), String::new()),
            ("succeeded".into(), String::new())
        ]
    );

    // GIVEN the same for a grant's write
    proxy.inject(
        "PutItem",
        Some("GRANT#ops"),
        0,
        1,
        ProxyFault::LostAnswer(500),
    );
    let text = "roles grant <@UBOB> ops";
    let reply = run(&stack, ADMIN, text, "g").await;
    // THEN one grant, a reply that says so, and an audit trail that agrees
    assert_eq!(reply, "<@UADMIN> granted *ops* to <@UBOB> until revoked.");
    assert_eq!(stack.store.all_grants().await.unwrap().len(), 1);
    assert_eq!(
        outcomes(&stack, text).await,
        [
            ("requested".into(), String::new()),
            ("succeeded".into(), String::new())
        ]
    );
}

/// Three grants of `ops` that ended a second ago, to UA, UB and UC, given in C0001.
async fn three_ended_grants(stack: &Stack) -> Vec<UserId> {
    let users: Vec<UserId> = ["UA", "UB", "UC"]
        .iter()
        .map(|u| UserId::parse(u).unwrap())
        .collect();
    let now = stack.now();
    for user in &users {
        let grant = Grant {
            id: uuid::Uuid::new_v4(),
            user: user.clone(),
            role: Role::parse("ops").unwrap(),
            granted_by: Some(UserId::parse(ADMIN).unwrap()),
            granted_at: now,
            starts_at: None,
            ends_at: Some(now + Span::hours(1)),
            channel: Some(ChannelId::parse("C0001").unwrap()),
            start_announced: false,
        };
        stack.store.put_grant(&grant).await.unwrap();
    }
    stack.clock.advance(Span::hours(1) + Span::seconds(1));
    users
}

/// No user holds `ops` now, whatever is still stored.
async fn nobody_holds_ops(stack: &Stack, users: &[UserId]) {
    let ops = Role::parse("ops").unwrap();
    for user in users {
        let roles = stack.bot.roles_of(user).await.unwrap();
        assert!(!roles.contains(&ops), "{user} still holds ops: {roles:?}");
    }
}

/// The "ended" announcements posted so far.
fn ended_notices(stack: &Stack) -> Vec<String> {
    stack
        .slack
        .posts_to("/api/chat.postMessage")
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_string())
        .filter(|t| t.contains("role for") && t.contains("ended"))
        .collect()
}

/// Each of `users` had their end announced once and audited once.
async fn each_end_told_once(stack: &Stack, users: &[UserId]) {
    let mut notices = ended_notices(stack);
    notices.sort();
    let expected: Vec<String> = users
        .iter()
        .map(|u| format!("*ops* role for {} ended — its time is up.", u.mention()))
        .collect();
    assert_eq!(notices, expected);
    let audit = stack.store.recent(None, 100).await.unwrap();
    for user in users {
        let ends = audit
            .iter()
            .filter(|r| {
                &r.user == user
                    && matches!(&r.outcome, Outcome::System { action } if action.contains("ended"))
            })
            .count();
        assert_eq!(ends, 1, "{user}'s end audited once");
    }
    assert!(stack.store.all_grants().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_expiry_pass_interrupted_midway_is_finished_by_the_next_one() {
    let proxy = FaultProxy::start().await;
    let (stack, store) = stack(&proxy).await;
    let users = three_ended_grants(&stack).await;
    // no grant authorizes outside its window, before any pass
    nobody_holds_ops(&stack, &users).await;
    // GIVEN a store that fails the second grant's removal
    store.inject(Fault::on(Op::ReplaceGrant).skip(1).times(1));
    // WHEN a pass runs: it fails midway
    assert!(stack.try_expire().await.is_err());
    // THEN what it did end was announced, and nobody holds ops meanwhile
    assert_eq!(
        ended_notices(&stack).len(),
        1,
        "{:?}",
        ended_notices(&stack)
    );
    nobody_holds_ops(&stack, &users).await;
    assert_eq!(stack.store.all_grants().await.unwrap().len(), 2);
    // WHEN the next pass runs
    let report = stack.expire().await;
    // THEN it ends the other two; each end was announced and audited once
    assert_eq!(report.grants_ended, 2);
    each_end_told_once(&stack, &users).await;
    nobody_holds_ops(&stack, &users).await;
    assert_eq!(stack.expire().await.grants_ended, 0, "nothing left to do");
}

#[tokio::test]
async fn an_expiry_pass_that_cannot_read_what_else_a_user_holds_still_announces_the_end() {
    let proxy = FaultProxy::start().await;
    let (stack, store) = stack(&proxy).await;
    let users = three_ended_grants(&stack).await;
    // GIVEN a store that fails the look-up, after the first removal, of what else
    // the user still holds (for the "still holds" sentence)
    store.inject(Fault::on(Op::GrantsFor).times(1));
    // WHEN a pass runs: the grant is gone already, so it goes on without the sentence
    assert_eq!(stack.expire().await.grants_ended, 3);
    assert_eq!(store.injected(), 1);
    // THEN every end was announced and audited once; nobody holds ops
    each_end_told_once(&stack, &users).await;
    nobody_holds_ops(&stack, &users).await;
}

#[tokio::test]
async fn a_rate_limited_reply_is_retried_and_delivered_once_and_the_command_runs_once() {
    let proxy = FaultProxy::start().await;
    let (stack, _) = stack(&proxy).await;
    // GIVEN a response_url that answers 429 (Retry-After: 0), then 502, then accepts
    stack
        .slack
        .push_response(opkit_tests::CannedResponse::rate_limited(0));
    stack
        .slack
        .push_response(opkit_tests::CannedResponse::status(502));
    // WHEN a count runs through the worker
    let message = stack.queue_command("U1", "tally hits", "limited").await;
    assert!(stack.work(&[message]).await.batch_item_failures.is_empty());
    // THEN the reply was accepted once, after the two refusals, and counted once
    let posts = stack.slack.wait_for(3, WAIT).await;
    let answered: Vec<u16> = posts.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [429, 502, 200]);
    assert_eq!(posts[2].json()["text"], "<@U1> counted *hits* (1).");
    assert_eq!(stack.store.load("tally").await.unwrap().version, 1);
}
