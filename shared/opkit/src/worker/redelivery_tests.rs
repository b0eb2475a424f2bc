//! Tests of a job's closing commit against a runner that dies, and against a
//! save that loses its race: the reply still goes out, once; no update is lost.

use super::*;
use crate::BoxFuture;
use crate::audit::Outcome;
use crate::engine::command::Caller;
use crate::ids::UserId;
use crate::job::JOB_VERSION;
use crate::slack::{MemoryPoster, PostError};
use crate::store::StateStore;
use crate::testing::TestBot;

fn key() -> EnvelopeKey {
    EnvelopeKey::new("worker-test-envelope-key-0123456789").unwrap()
}

fn job(user: &str, text: &str) -> Job {
    Job {
        v: JOB_VERSION,
        id: uuid::Uuid::new_v4(),
        received_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        source: Source::Local,
        caller: Caller::user(UserId::parse(user).unwrap()),
        text: text.into(),
        reply_to: ReplyTo::ResponseUrl {
            url: crate::slack::ResponseUrl::parse("https://hooks.slack.com/commands/1").unwrap(),
        },
        trigger_id: None,
    }
}

/// Delivery `receive_count` of the queue message `id` carrying `job`.
fn delivery(id: &str, job: &Job, receive_count: u32) -> QueueMessage {
    QueueMessage {
        id: id.into(),
        receipt: format!("receipt-{receive_count}"),
        body: job.encode(&key()),
        receive_count,
    }
}

/// A poster whose first post never returns — the runner dies there, once its
/// command has committed — and which records every later one.
struct DiesAtFirstPost {
    reached: tokio::sync::Notify,
    dead: std::sync::atomic::AtomicBool,
    after: MemoryPoster,
}

impl ReplyPoster for DiesAtFirstPost {
    fn post<'a>(
        &'a self,
        response_url: &'a crate::slack::ResponseUrl,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<(), PostError>> {
        use std::sync::atomic::Ordering;
        if !self.dead.swap(true, Ordering::SeqCst) {
            self.reached.notify_one();
            return Box::pin(std::future::pending());
        }
        self.after.post(response_url, reply)
    }
}

fn runner_dying_at_first_post(t: &TestBot) -> (JobRunner, Arc<DiesAtFirstPost>) {
    let poster = Arc::new(DiesAtFirstPost {
        reached: tokio::sync::Notify::new(),
        dead: false.into(),
        after: MemoryPoster::new(),
    });
    let worker = Arc::new(Worker::new(t.bot.clone(), poster.clone(), None));
    (JobRunner::new(worker, t.store.clone(), key()), poster)
}

#[tokio::test]
async fn a_runner_that_dies_between_the_commit_and_the_post_has_its_reply_posted_by_the_redelivery()
{
    // GIVEN a stateful command whose runner dies as it posts the reply: after its
    // closing commit (state, audit, job done) and before anything reached Slack
    let t = crate::fixtures::bot();
    let (runner, poster) = runner_dying_at_first_post(&t);
    let j = job("UA", "tally perf");
    let first = delivery("m-1", &j, 1);
    tokio::select! {
        _ = runner.process_message(&first) => panic!("the post never returns"),
        () = poster.reached.notified() => {}
    }
    assert_eq!(t.store.load("tally").await.unwrap().version, 1);
    assert!(poster.after.posts().is_empty());
    // WHEN SQS delivers that message again (its visibility timeout ran out)
    runner
        .process_message(&delivery("m-1", &j, 2))
        .await
        .unwrap();
    // THEN the reply the command gave is posted, as it would have been (in the
    // channel: the command says so), and the command did not run again
    let posts = poster.after.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].1.text, "<@UA> counted *perf* (1).");
    assert_eq!(posts[0].1.visibility, Visibility::InChannel);
    let state: std::collections::BTreeMap<String, u64> = t.state("tally").await;
    assert_eq!(state["perf"], 1);
    assert_eq!(t.store.load("tally").await.unwrap().version, 1);
    // AND a further delivery of it posts nothing more, nor does another message
    // of the same job (Slack sending an event again)
    for again in [delivery("m-1", &j, 3), delivery("m-2", &j, 1)] {
        runner.process_message(&again).await.unwrap();
    }
    assert_eq!(poster.after.posts().len(), 1);
}

#[tokio::test]
async fn a_reply_posted_before_the_runner_died_is_not_posted_by_another_message_of_the_job() {
    // GIVEN a job run to the end by one message, its reply posted
    let t = crate::fixtures::bot();
    let (runner, poster) = runner_dying_at_first_post(&t);
    poster.dead.store(true, std::sync::atomic::Ordering::SeqCst);
    let j = job("UA", "tally perf");
    runner
        .process_message(&delivery("m-1", &j, 1))
        .await
        .unwrap();
    assert_eq!(poster.after.posts().len(), 1);
    // WHEN a second message of the same job comes (a replayed request)
    runner
        .process_message(&delivery("m-2", &j, 1))
        .await
        .unwrap();
    // THEN nothing runs and nothing more is posted
    assert_eq!(poster.after.posts().len(), 1);
    assert_eq!(t.store.load("tally").await.unwrap().version, 1);
}

/// `add <name>`: adds a name to the script's list; a run for `ann` first tells
/// `loaded` that its state was read, then waits for a permit of `go`.
fn gated_list(
    loaded: Arc<tokio::sync::Notify>,
    go: Arc<tokio::sync::Semaphore>,
) -> crate::engine::Script<Vec<String>> {
    use crate::engine::{Command, Script};
    Script::new("list").command(Command::new("add").usage("<name>").handler(
        move |ctx: &mut crate::engine::Ctx<Vec<String>>| {
            let (loaded, go) = (loaded.clone(), go.clone());
            Box::pin(async move {
                let name = ctx.args.word(0, "a name")?.to_string();
                if name == "ann" {
                    loaded.notify_one();
                    go.acquire().await.expect("open").forget();
                }
                ctx.state.push(name.clone());
                Ok(Reply::text(crate::mrkdwn!(
                    "added {}",
                    crate::slack::UserText::new(name)
                )))
            })
        },
    ))
}

#[tokio::test]
async fn a_commit_that_loses_its_race_runs_the_command_again_and_loses_nothing() {
    // GIVEN two jobs on one script's state: A has read it (version 0) and waits
    let loaded = Arc::new(tokio::sync::Notify::new());
    let go = Arc::new(tokio::sync::Semaphore::new(0));
    let t = TestBot::with(|b| b.script(gated_list(loaded.clone(), go.clone())));
    let poster = Arc::new(MemoryPoster::new());
    let worker = Arc::new(Worker::new(t.bot.clone(), poster.clone(), None));
    let runner = Arc::new(JobRunner::new(worker, t.store.clone(), key()));
    let (a, b) = (job("UA", "add ann"), job("UB", "add bob"));
    let first = {
        let (runner, a) = (runner.clone(), a.clone());
        tokio::spawn(async move { runner.process_message(&delivery("m-a", &a, 1)).await })
    };
    loaded.notified().await;
    // WHEN B runs to the end meanwhile (its commit makes version 1)
    runner
        .process_message(&delivery("m-b", &b, 1))
        .await
        .unwrap();
    assert_eq!(t.store.load("list").await.unwrap().version, 1);
    // and A goes on (and may run once more): its commit, on version 0, is
    // refused as a whole
    go.add_permits(2);
    first.await.unwrap().unwrap();
    // THEN A ran again on B's state: both are in the list, once each
    let list: Vec<String> = t.state("list").await;
    assert_eq!(list, ["bob", "ann"]);
    assert_eq!(t.store.load("list").await.unwrap().version, 2);
    // AND each job's records are in the trail once — none lost, none doubled by
    // the attempt that lost — and both jobs are done
    let trail = t.audit(20).await;
    for user in ["UA", "UB"] {
        let outcomes: Vec<&Outcome> = trail
            .iter()
            .filter(|r| r.user.as_str() == user)
            .map(|r| &r.outcome)
            .collect();
        assert_eq!(
            outcomes,
            [&Outcome::Succeeded, &Outcome::Requested],
            "{user}: {trail:?}"
        );
    }
    for j in [&a, &b] {
        let claim = t.store.claim(&j.id.to_string(), t.now(), LEASE).await;
        assert!(
            matches!(claim, Ok(Claim::AlreadyDone | Claim::Answered(_))),
            "{claim:?}"
        );
    }
    let texts: Vec<String> = poster
        .posts()
        .into_iter()
        .map(|p| p.1.text.into_string())
        .collect();
    assert_eq!(texts, ["added bob", "added ann"]);
}

#[test]
fn a_batch_runs_within_a_small_thread_stack() {
    // GIVEN a thread with a quarter of the 2 MiB a test thread (or a tokio
    // worker) gets — a debug build, whose frames are largest
    const STACK: usize = 512 * 1024;
    let ran = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                // WHEN a batch of stateful jobs runs side by side through the
                // whole work path (claim, run, commit, post)
                let t = crate::fixtures::bot();
                let (runner, poster) = runner_dying_at_first_post(&t);
                poster.dead.store(true, std::sync::atomic::Ordering::SeqCst);
                let batch: Vec<QueueMessage> = (0..BATCH_CONCURRENCY)
                    .map(|i| delivery(&format!("m-{i}"), &job(&format!("U{i}"), "tally perf"), 1))
                    .collect();
                assert!(runner.process_batch(&batch, None).await.is_empty());
                poster.after.posts().len()
            })
        })
        .unwrap()
        .join();
    // THEN it fits: no layer keeps a job's whole future in its own frame (a
    // stack overflow aborts the process, so this test fails loudly if one does)
    assert_eq!(ran.unwrap(), BATCH_CONCURRENCY);
}
