//! Load on the deployed path (emulator): many state-changing commands of one
//! script at once lose no update. Every save goes through a counting wrapper at
//! the store port, so the optimistic-concurrency conflicts (each one a command run
//! again on fresh state) are counted, not guessed.
//!
//! The invariant, for every burst: each command that answered "done" is in the
//! state exactly once (a counter equals the number of such answers); each other
//! command told its user to try again and is audited as failed; every user got
//! exactly one reply at their own `response_url`.
//!
//! The 200-command bursts take 20–60 s on moto (which serialises requests), so
//! they are not part of the default run; reproduce the figures with
//!
//! ```sh
//! bash infra/test.sh --test load -- --include-ignored --nocapture --test-threads 1
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opkit::store::{AuditLog, StateStore};
use opkit_tests::faults::{FaultyStore, Op};
use opkit_tests::serverless::Stack;
use opkit_tests::slash_command_body;

const WAIT: Duration = Duration::from_secs(60);
const TOO_MANY: &str = "Too many people are changing this at once; please try again.";

/// A stack whose bot has `tally`, its store wrapped in a counter.
async fn stack() -> (Arc<Stack>, Arc<FaultyStore>) {
    let slot = Arc::new(Mutex::new(None));
    let keep = slot.clone();
    let stack = Stack::builder()
        .bot(|b| b.script(opkit_tests::tally::script()))
        .store(move |store| {
            let counting = FaultyStore::new(store);
            *keep.lock().unwrap() = Some(counting.clone());
            counting
        })
        .start()
        .await;
    let counting = slot.lock().unwrap().take().unwrap();
    (Arc::new(stack), counting)
}

/// What a burst did.
struct Burst {
    /// Reply text by user.
    replies: BTreeMap<String, String>,
    conflicts: usize,
}

/// Each `(user, text)` queued through the ingress, then run by concurrent worker
/// invocations of `per_invocation` messages each (the event source sends up to
/// ten); returns every user's one reply.
async fn burst(
    stack: &Arc<Stack>,
    store: &FaultyStore,
    commands: &[(String, String)],
    per_invocation: usize,
) -> Burst {
    let n = commands.len();
    for (user, text) in commands {
        let body = slash_command_body(user, text, &stack.slack.response_url(user));
        let (status, ack) = stack
            .ingress(stack.signed_event("/slack/commands", &body))
            .await;
        assert_eq!(status, 200, "{ack}");
    }
    let messages = stack.drain().await;
    assert_eq!(messages.len(), n);
    let (started, saves, conflicts) = (Instant::now(), store.calls(Op::Save), store.conflicts());
    let invocations: Vec<_> = messages
        .chunks(per_invocation)
        .map(|batch| {
            let (stack, batch) = (stack.clone(), batch.to_vec());
            tokio::spawn(async move { stack.work(&batch).await })
        })
        .collect();
    for invocation in invocations {
        assert!(invocation.await.unwrap().batch_item_failures.is_empty());
    }
    let elapsed = started.elapsed();
    let requests = stack.slack.wait_for(n, WAIT).await;
    let mut replies = BTreeMap::new();
    for r in &requests {
        let user = r.path.trim_start_matches("/response/").to_string();
        let text = r.json()["text"].as_str().unwrap_or_default().to_string();
        assert!(
            replies.insert(user.clone(), text).is_none(),
            "{user} got two replies"
        );
    }
    assert_eq!(replies.len(), n, "every user got a reply");
    let (saves, conflicts) = (store.calls(Op::Save) - saves, store.conflicts() - conflicts);
    let refused = replies.values().filter(|t| t.as_str() == TOO_MANY).count();
    assert_eq!(
        saves,
        n - refused + conflicts,
        "every save either won or lost a race and the command ran again"
    );
    println!(
        "{n} commands, {} invocations at once ({per_invocation} each): {conflicts} conflicts \
         retried, {refused} refused after the last attempt, 0 lost; {:.1} s",
        n.div_ceil(per_invocation),
        elapsed.as_secs_f64()
    );
    Burst { replies, conflicts }
}

/// Every command either counted (and says so) or was refused (and says so, and
/// the audit trail says it failed); the count is exactly the number counted.
async fn assert_counted_exactly(stack: &Stack, burst: &Burst) {
    let counted = burst
        .replies
        .values()
        .filter(|t| t.contains("counted *hits*"))
        .count();
    let refused = burst
        .replies
        .values()
        .filter(|t| t.as_str() == TOO_MANY)
        .count();
    assert_eq!(
        counted + refused,
        burst.replies.len(),
        "{:?}",
        burst.replies
    );
    let state = stack.store.load("tally").await.unwrap();
    assert_eq!(
        state.value.unwrap()["hits"],
        counted as u64,
        "no update lost"
    );
    assert_eq!(
        state.version, counted as u64,
        "one write per counted command"
    );
    let mut numbers: Vec<u64> = burst
        .replies
        .values()
        .filter_map(|t| t.rsplit_once('(')?.1.strip_suffix(").")?.parse().ok())
        .collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=counted as u64).collect::<Vec<_>>(),
        "each count was seen by exactly one command"
    );
    let audit = stack
        .store
        .recent(None, 4 * burst.replies.len())
        .await
        .unwrap();
    let outcome = |name: &str| audit.iter().filter(|r| r.outcome.name() == name).count();
    assert_eq!(
        (outcome("succeeded"), outcome("failed")),
        (counted, refused)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_counts_loses_no_update() {
    // GIVEN 60 users each counting once, in six invocations of ten at once (CI-sized)
    let (stack, store) = stack().await;
    let commands: Vec<_> = (0..60)
        .map(|i| (format!("U{i:04}"), "tally hits".to_string()))
        .collect();
    let burst = burst(&stack, &store, &commands, 10).await;
    // THEN the count is exactly the number of commands that said they counted
    assert_counted_exactly(&stack, &burst).await;
    assert!(burst.conflicts > 0, "six writers on one item do race");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "heavy (about a minute on moto): run with --include-ignored, see the module docs"]
async fn two_hundred_concurrent_counts_lose_no_update() {
    // GIVEN 200 users counting at once, each its own worker invocation
    let (stack, store) = stack().await;
    let commands: Vec<_> = (0..200)
        .map(|i| (format!("U{i:04}"), "tally hits".to_string()))
        .collect();
    let burst = burst(&stack, &store, &commands, 1).await;
    assert_counted_exactly(&stack, &burst).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "heavy (about a minute on moto): run with --include-ignored, see the module docs"]
async fn two_hundred_counts_in_batches_of_ten_lose_no_update() {
    // GIVEN 200 counts as the event source sends them: 20 invocations of ten
    let (stack, store) = stack().await;
    let commands: Vec<_> = (0..200)
        .map(|i| (format!("U{i:04}"), "tally hits".to_string()))
        .collect();
    let burst = burst(&stack, &store, &commands, 10).await;
    assert_counted_exactly(&stack, &burst).await;
}

/// 200 users joining 200 environments of one queue state (one item, growing to
/// 200 lines), `per_invocation` messages per worker invocation: whoever was told
/// they hold their environment holds it, once; whoever was refused is not in line.
async fn two_hundred_queue_joins(per_invocation: usize) {
    let (stack, store) = stack().await;
    let commands: Vec<_> = (0..200)
        .map(|i| (format!("U{i:04}"), format!("queue join env-{i}")))
        .collect();
    let burst = burst(&stack, &store, &commands, per_invocation).await;
    let state = stack.store.load("queue").await.unwrap();
    let envs = state.value.unwrap()["envs"].clone();
    let mut joined = 0;
    for (i, (user, _)) in commands.iter().enumerate() {
        let reply = &burst.replies[user];
        let line = &envs[format!("env-{i}")];
        if reply.as_str() == TOO_MANY {
            assert!(line.is_null(), "{user} was refused but is in line");
        } else {
            assert_eq!(
                reply,
                &format!("<@{user}> holds *env-{i}* now until you leave.")
            );
            assert_eq!(line.as_array().map(Vec::len), Some(1), "{user}: {line}");
            assert_eq!(line[0]["user"], user.as_str());
            joined += 1;
        }
    }
    assert_eq!(state.version, joined, "one write per join that said so");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "heavy (about a minute on moto): run with --include-ignored, see the module docs"]
async fn two_hundred_concurrent_queue_joins_lose_no_one() {
    two_hundred_queue_joins(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "heavy (about a minute on moto): run with --include-ignored, see the module docs"]
async fn two_hundred_queue_joins_in_batches_of_ten_lose_no_one() {
    two_hundred_queue_joins(10).await;
}
