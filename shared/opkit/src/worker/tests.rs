//! Tests of the work path: runs, claims, batches, deadlines, progress messages.

use super::claims::UNNAMED_SENDER;
use super::*;
use crate::BoxFuture;
use crate::job::{JOB_VERSION, JobQueue, QueueError};
use crate::slack::MemoryPoster;
use crate::store::{JobClaims, StateStore};
use crate::testing::TestBot;

pub(super) fn job(user: &str, text: &str) -> Job {
    Job {
        v: JOB_VERSION,
        id: uuid::Uuid::new_v4(),
        received_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        source: Source::Local,
        caller: crate::engine::command::Caller::user(crate::ids::UserId::parse(user).unwrap()),
        text: text.into(),
        reply_to: ReplyTo::ResponseUrl {
            url: crate::slack::ResponseUrl::parse("https://hooks.slack.com/commands/1").unwrap(),
        },
        trigger_id: None,
    }
}

/// The envelope key of the tests' runners.
fn key() -> EnvelopeKey {
    EnvelopeKey::new("worker-test-envelope-key-0123456789").unwrap()
}

fn message(job: &Job, receive_count: u32) -> QueueMessage {
    body_message(&format!("m-{receive_count}"), job.encode(&key()))
}

fn body_message(id: &str, body: String) -> QueueMessage {
    QueueMessage {
        id: id.into(),
        receipt: String::new(),
        body,
        receive_count: 1,
    }
}

pub(super) fn runner(t: &TestBot) -> (JobRunner, Arc<MemoryPoster>) {
    runner_with(t, Arc::new(MemoryPoster::new()))
}

fn runner_with<P: ReplyPoster + 'static>(t: &TestBot, poster: Arc<P>) -> (JobRunner, Arc<P>) {
    let worker = Arc::new(Worker::new(t.bot.clone(), poster.clone(), None));
    (JobRunner::new(worker, t.store.clone(), key()), poster)
}

#[tokio::test]
async fn a_job_delivered_three_times_runs_once() {
    let t = crate::fixtures::bot();
    let (runner, poster) = runner(&t);
    let j = job("UA", "tally perf");
    let batch = [message(&j, 1), message(&j, 2), message(&j, 3)];
    assert!(runner.process_batch(&batch, None).await.is_empty());
    assert_eq!(poster.posts().len(), 1);
    assert_eq!(poster.posts()[0].1.text, "<@UA> counted *perf* (1).");
    assert_eq!(t.store.load("tally").await.unwrap().version, 1);
}

#[tokio::test]
async fn a_job_put_twice_on_the_inline_queue_runs_once() {
    // GIVEN `opkit serve`'s in-process queue
    let t = crate::fixtures::bot();
    let (runner, poster) = runner(&t);
    let queue = InlineQueue::start(Arc::new(runner), 8);
    // WHEN Slack's retry of an event puts the same job on it again
    let j = job("UA", "tally perf");
    queue.enqueue(&j).await.unwrap();
    queue.enqueue(&j).await.unwrap();
    queue.idle().await;
    // THEN it ran once: one reply, one change
    assert_eq!(poster.posts().len(), 1);
    assert_eq!(poster.posts()[0].1.text, "<@UA> counted *perf* (1).");
    assert_eq!(t.store.load("tally").await.unwrap().version, 1);
    // AND a later retry finds it done, while another job still runs
    queue.enqueue(&j).await.unwrap();
    queue.enqueue(&job("UB", "tally perf")).await.unwrap();
    queue.idle().await;
    let posts: Vec<String> = poster
        .posts()
        .into_iter()
        .map(|p| p.1.text.into_string())
        .collect();
    assert_eq!(
        posts,
        ["<@UA> counted *perf* (1).", "<@UB> counted *perf* (2)."]
    );
    let claim = t.store.claim(&j.id.to_string(), t.now(), LEASE).await;
    assert_eq!(claim.unwrap(), Claim::AlreadyDone);
}

#[tokio::test]
async fn a_claim_that_cannot_be_taken_runs_nothing_and_the_last_delivery_says_so() {
    // GIVEN a store in which no claim can be written
    let t = crate::fixtures::bot();
    let dir = std::env::temp_dir().join(format!("opkit-claims-{}", uuid::Uuid::new_v4()));
    let claims = crate::store::file::FileStore::open(&dir).unwrap();
    std::fs::remove_dir(dir.join("jobs")).unwrap();
    std::fs::write(dir.join("jobs"), "not a directory").unwrap();
    let poster = Arc::new(MemoryPoster::new());
    let worker = Arc::new(Worker::new(t.bot.clone(), poster.clone(), None));
    let runner = Arc::new(JobRunner::new(worker, Arc::new(claims), key()));
    let j = job("UA", "tally perf\n• `forged`");
    // WHEN a queue will deliver it again: nothing runs, nobody is told yet
    let early = runner.run_once(&j, false).await;
    assert!(matches!(early, Err(Retry::Claim { .. })), "{early:?}");
    assert!(poster.posts().is_empty());
    // WHEN it is the last delivery (always so on the in-process queue)
    let queue = InlineQueue::start(runner, 8);
    queue.enqueue(&j).await.unwrap();
    queue.idle().await;
    // THEN the user is told, quoting the command on one line, and nothing ran
    let posts = poster.posts();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].1.text.starts_with(
            "Sorry, I could not run `tally perf⏎• ˋforgedˋ`: the bot's store is unavailable."
        ),
        "{}",
        posts[0].1.text
    );
    assert_eq!(t.store.load("tally").await.unwrap().version, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_job_claimed_by_a_live_worker_is_retried_later_and_then_runs() {
    let t = crate::fixtures::bot();
    let (runner, poster) = runner(&t);
    let j = job("UA", "whoami");
    // another worker claimed it and is (as far as we know) still on it
    t.store
        .claim(&j.id.to_string(), t.bot.now(), chrono::Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(runner.process_batch(&[message(&j, 1)], None).await, ["m-1"]);
    assert!(poster.posts().is_empty());
    // it died: once the lease runs out, the redelivery claims and runs it
    t.advance(chrono::Duration::minutes(2));
    assert!(
        runner
            .process_batch(&[message(&j, 2)], None)
            .await
            .is_empty()
    );
    assert_eq!(poster.posts().len(), 1);
}

#[tokio::test]
async fn a_job_cut_off_half_way_is_not_run_again_by_any_redelivery() {
    use crate::timing::{MAX_RECEIVES, VISIBILITY_TIMEOUT_SECS};
    // GIVEN a job whose invocation claimed it (as run_claimed does), then timed out
    let t = crate::fixtures::bot();
    let (runner, poster) = runner(&t);
    let j = job("UA", "tally perf");
    let claim = t
        .store
        .claim(&j.id.to_string(), t.now(), runner.lease)
        .await;
    assert_eq!(claim.unwrap(), Claim::Acquired);
    // WHEN SQS delivers it again after each visibility timeout, up to its last receive
    for receive in 2..=MAX_RECEIVES {
        t.advance(Duration::seconds(i64::from(VISIBILITY_TIMEOUT_SECS)));
        let failed = runner.process_batch(&[message(&j, receive)], None).await;
        // THEN each delivery finds the claim held and gives the message back
        assert_eq!(failed, [format!("m-{receive}")], "receive {receive}");
    }
    // AND the half-done job never ran a second time: the last receive sends it to
    // the dead-letter queue
    assert!(poster.posts().is_empty());
    assert_eq!(t.store.load("tally").await.unwrap().version, 0);
}

/// A worker that posts a progress message before every command.
fn progress_worker(t: &TestBot) -> (Worker, Arc<crate::slack::MemoryChannelPoster>) {
    let channels = Arc::new(crate::slack::MemoryChannelPoster::new());
    let worker = Worker::new(
        t.bot.clone(),
        Arc::new(MemoryPoster::new()),
        Some(channels.clone()),
    )
    .with_progress_after(std::time::Duration::ZERO);
    (worker, channels)
}

fn in_channel(mut j: Job, thread_ts: Option<&str>) -> Job {
    j.reply_to = ReplyTo::Channel {
        channel: crate::ids::ChannelId::parse("C1").unwrap(),
        thread_ts: thread_ts.map(str::to_string),
    };
    j
}

#[tokio::test]
async fn long_work_in_a_channel_posts_progress_then_replaces_it() {
    let t = crate::fixtures::bot();
    let (worker, channels) = progress_worker(&t);
    let j = in_channel(job("UA", "tally perf"), Some("9.9"));
    worker.process(&j).await.unwrap();
    let posts = channels.posts();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].reply.text, "Working on it…");
    assert_eq!(posts[0].thread_ts.as_deref(), Some("9.9"));
    assert!(posts[1].updated, "the result replaces the progress message");
    assert_eq!(posts[1].ts, posts[0].ts);
    assert_eq!(posts[1].reply.text, "<@UA> counted *perf* (1).");
}

#[tokio::test]
async fn long_ephemeral_work_answers_the_asker_and_closes_the_progress_message() {
    let t = crate::fixtures::bot();
    let (worker, channels) = progress_worker(&t);
    let j = in_channel(job("UA", "whoami"), None);
    worker.process(&j).await.unwrap();
    let posts = channels.posts();
    assert_eq!(posts.len(), 3);
    assert_eq!(posts[1].only_for.as_deref(), Some("UA"));
    assert!(posts[2].updated);
    assert_eq!(posts[2].reply.text, "Done.");
}

#[tokio::test]
async fn a_slash_command_gets_no_extra_progress_message() {
    let t = crate::fixtures::bot();
    let poster = Arc::new(MemoryPoster::new());
    let worker = Worker::new(t.bot.clone(), poster.clone(), None)
        .with_progress_after(std::time::Duration::ZERO);
    worker.process(&job("UA", "tally perf")).await.unwrap();
    assert_eq!(
        poster.posts().len(),
        1,
        "the ack already said it was working"
    );
    assert!(!poster.posts()[0].1.replace_original);
}

#[tokio::test]
async fn a_button_clicked_in_a_thread_answers_in_that_thread_unless_only_for_the_clicker() {
    // GIVEN command buttons clicked on a message that starts the thread 7.7
    let t = crate::fixtures::bot();
    let poster = Arc::new(MemoryPoster::new());
    let worker = Worker::new(t.bot.clone(), poster.clone(), None);
    let clicked = |text: &str| {
        let mut j = job("UA", text);
        j.source = Source::Button;
        j.caller.thread_ts = Some("7.7".into());
        j
    };
    // WHEN one answers for the channel and the other for the clicker alone
    worker.process(&clicked("tally perf")).await.unwrap();
    worker.process(&clicked("whoami")).await.unwrap();
    // THEN the first goes into the thread; the ephemeral one stays out of it
    let posts = poster.posts();
    assert_eq!(posts[0].1.to_response_json()["thread_ts"], "7.7");
    assert_eq!(posts[1].1.visibility, crate::slack::Visibility::Ephemeral);
    assert_eq!(posts[1].1.thread_ts, None);
}

#[tokio::test]
async fn an_unusable_envelope_is_dropped_not_retried_forever() {
    let t = crate::fixtures::bot();
    let (runner, poster) = runner(&t);
    let mut newer = job("UA", "tally perf");
    newer.v = 99;
    let bad = message(&newer, 1);
    assert!(runner.process_batch(&[bad], None).await.is_empty());
    assert!(poster.posts().is_empty());
    assert!(t.audit(10).await.is_empty(), "ours, not a forgery");
}

/// `roles grant <@UEVE> admin` as the bootstrap admin.
fn grant_as_admin() -> Job {
    job(crate::testing::ADMIN, "roles grant <@UEVE> admin")
}

async fn eve_is_admin(t: &TestBot) -> bool {
    use crate::store::GrantStore;
    let eve = crate::ids::UserId::parse("UEVE").unwrap();
    !t.store.grants_for(&eve).await.unwrap().is_empty()
}

#[tokio::test]
async fn forged_envelopes_naming_an_admin_run_nothing_and_are_audited() {
    let t = crate::fixtures::bot();
    let (runner, poster) = runner(&t);
    let forged = grant_as_admin();
    let mut eve = forged.clone();
    eve.caller.user = crate::ids::UserId::parse("UEVE").unwrap();
    let cases = [
        // valid JSON naming the admin, without a MAC
        (
            "bare",
            serde_json::to_string(&forged).unwrap(),
            "not sealed",
        ),
        // sealed with a key that is not ours (another process's)
        (
            "other key",
            forged.encode(&EnvelopeKey::random()),
            "does not match",
        ),
        // Eve's genuine envelope, changed to name the admin
        (
            "tampered",
            eve.encode(&key())
                .replace(r#""user":"UEVE""#, r#""user":"UADMIN""#),
            "does not match",
        ),
    ];
    for (n, (name, body, says)) in cases.into_iter().enumerate() {
        // WHEN the worker gets it from the queue
        let failed = runner
            .process_batch(&[body_message(&format!("m-{name}"), body)], None)
            .await;
        // THEN it is dropped, not retried; nothing ran, nobody was answered
        assert!(failed.is_empty(), "{name}: {failed:?}");
        assert!(!eve_is_admin(&t).await, "{name}: the grant ran");
        assert!(poster.posts().is_empty(), "{name}");
        // AND one audit record, and only that, names the forgery, the message
        // and who was claimed
        let records = t.audit(10).await;
        assert_eq!(records.len(), n + 1, "{name}: only refusals: {records:?}");
        let record = &records[0];
        assert_eq!(record.outcome.name(), "forged", "{name}");
        assert_eq!(record.user.as_str(), "UADMIN", "{name}");
        assert_eq!(record.text, "roles grant <@UEVE> admin", "{name}");
        let Outcome::Forged { reason } = &record.outcome else {
            unreachable!()
        };
        assert!(reason.contains(says), "{name}: {reason}");
        assert!(
            reason.contains(&format!("queue message m-{name}")),
            "{reason}"
        );
        assert!(reason.contains(&forged.id.to_string()), "{reason}");
    }
    // AND the genuine envelope still runs
    assert!(
        runner
            .process_batch(&[message(&forged, 1)], None)
            .await
            .is_empty()
    );
    assert!(eve_is_admin(&t).await, "a sealed job runs");
    assert_eq!(poster.posts().len(), 1);
}

#[tokio::test]
async fn junk_on_the_queue_is_audited_under_no_one_in_particular() {
    let t = crate::fixtures::bot();
    let (runner, _) = runner(&t);
    let junk = body_message("m-junk", "{\"caller\":{\"user\":\"not a user\"}".into());
    assert!(runner.process_batch(&[junk], None).await.is_empty());
    let records = t.audit(10).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].user.as_str(), UNNAMED_SENDER);
    assert_eq!(records[0].outcome.name(), "forged");
}

#[tokio::test]
async fn the_inline_queue_seals_and_opens_with_the_runners_key() {
    // GIVEN `opkit serve`'s in-process queue, with a random key
    let t = crate::fixtures::bot();
    let poster = Arc::new(MemoryPoster::new());
    let worker = Arc::new(Worker::new(t.bot.clone(), poster.clone(), None));
    let runner = JobRunner::new(worker, t.store.clone(), EnvelopeKey::random());
    let queue = InlineQueue::start(Arc::new(runner), 8);
    // WHEN a job goes through it
    queue.enqueue(&job("UA", "tally perf")).await.unwrap();
    queue.idle().await;
    // THEN it ran
    assert_eq!(poster.posts().len(), 1);
    assert!(
        t.audit(10)
            .await
            .iter()
            .all(|r| r.outcome.name() != "forged")
    );
}

/// A poster whose every delivery takes `takes` of the (manual) clock's time.
struct SlowPoster {
    inner: MemoryPoster,
    clock: crate::clock::ManualClock,
    takes: Duration,
}

impl ReplyPoster for SlowPoster {
    fn post<'a>(
        &'a self,
        response_url: &'a crate::slack::ResponseUrl,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<(), crate::slack::PostError>> {
        self.clock.advance(self.takes);
        self.inner.post(response_url, reply)
    }
}

#[tokio::test]
async fn a_batch_near_its_deadline_returns_the_records_it_did_not_start() {
    // GIVEN jobs that take 15 s each, and an invocation with 30 s left
    let t = crate::fixtures::bot();
    let slow = Arc::new(SlowPoster {
        inner: MemoryPoster::new(),
        clock: t.clock.clone(),
        takes: Duration::seconds(15),
    });
    let (mut runner, slow) = runner_with(&t, slow);
    // (two at a time: each pair takes the clock 30 s on)
    runner.concurrency = 2;
    let jobs: Vec<Job> = ["UA", "UB", "UC", "UD"]
        .iter()
        .map(|u| job(u, "tally perf"))
        .collect();
    let batch: Vec<QueueMessage> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| body_message(&format!("m-{i}"), j.encode(&key())))
        .collect();
    let deadline = t.now() + Duration::seconds(30);
    // WHEN the batch runs
    let failed = runner.process_batch(&batch, Some(deadline)).await;
    // THEN two ran (30 s left when they started), and the two not started come back
    assert_eq!(failed, ["m-2", "m-3"]);
    assert_eq!(slow.inner.posts().len(), 2);
    assert_eq!(t.store.load("tally").await.unwrap().version, 2);
    // AND they were left untouched: a later invocation runs them
    let later = t.now() + Duration::seconds(30);
    assert_eq!(
        runner.process_batch(&batch[2..3], Some(later)).await.len(),
        0
    );
    assert_eq!(slow.inner.posts().len(), 3);
    let claim = t.store.claim(&jobs[3].id.to_string(), t.now(), LEASE).await;
    assert_eq!(claim.unwrap(), Claim::Acquired, "never claimed");
}

#[tokio::test]
async fn a_batch_with_less_than_the_margin_left_starts_nothing() {
    let t = crate::fixtures::bot();
    let (runner, poster) = runner(&t);
    let j = job("UA", "tally perf");
    let deadline = t.now() + START_MARGIN - Duration::milliseconds(1);
    let failed = runner
        .process_batch(&[message(&j, 1)], Some(deadline))
        .await;
    assert_eq!(failed, ["m-1"]);
    assert!(poster.posts().is_empty());
    assert_eq!(t.store.load("tally").await.unwrap().version, 0);
    // with exactly the margin left, it starts
    let deadline = t.now() + START_MARGIN;
    assert!(
        runner
            .process_batch(&[message(&j, 2)], Some(deadline))
            .await
            .is_empty()
    );
    assert_eq!(poster.posts().len(), 1);
}

/// `wait <name>`: a command that calls a slow API — it waits until every one of
/// the batch's `gate` commands is running at once (a run one after another never
/// gets there), then a second — and changes no state.
fn slow_api(gate: Arc<tokio::sync::Barrier>) -> crate::engine::Script<()> {
    use crate::engine::{Command, Script};
    Script::new("slow").command(Command::new("wait").usage("<name>").handler(move |ctx| {
        let gate = gate.clone();
        Box::pin(async move {
            gate.wait().await;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            Ok(Reply::text(crate::mrkdwn!(
                "{} waited.",
                ctx.caller.user.mention()
            )))
        })
    }))
}

/// `n` messages, each a job of its own user typing `text`.
fn batch_of(text: &str, n: usize) -> Vec<QueueMessage> {
    (0..n)
        .map(|i| {
            body_message(
                &format!("m-{i}"),
                job(&format!("U{i:02}"), text).encode(&key()),
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn ten_commands_each_waiting_a_second_on_a_slow_api_take_a_second_together() {
    // GIVEN a command that waits until ten of it run at once, then a second more
    let gate = Arc::new(tokio::sync::Barrier::new(BATCH_CONCURRENCY));
    let t = TestBot::with(|b| b.script(slow_api(gate.clone())));
    let (runner, poster) = runner(&t);
    let batch = batch_of("wait x", BATCH_CONCURRENCY);
    // WHEN one batch of ten runs (tokio's clock is paused: it moves only when
    // every task waits on a timer, so what it shows is the work's own time)
    let started = tokio::time::Instant::now();
    let ran = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        runner.process_batch(&batch, None),
    )
    .await;
    // THEN all ten were running together (one at a time, the first would wait
    // at the gate forever), and the batch took one second, not ten
    let failed = ran.expect("the ten records ran side by side");
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(started.elapsed(), std::time::Duration::from_secs(1));
    assert_eq!(poster.posts().len(), BATCH_CONCURRENCY);
}

#[tokio::test(start_paused = true)]
async fn one_at_a_time_the_same_batch_would_never_pass_the_gate() {
    // The proof above can fail: with records run one after another, the gate
    // that needs all ten is never reached, and the timeout says so.
    let gate = Arc::new(tokio::sync::Barrier::new(BATCH_CONCURRENCY));
    let t = TestBot::with(|b| b.script(slow_api(gate.clone())));
    let (mut runner, _poster) = runner(&t);
    runner.concurrency = 1;
    let batch = batch_of("wait x", BATCH_CONCURRENCY);
    let ran = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        runner.process_batch(&batch, None),
    )
    .await;
    assert!(ran.is_err(), "one at a time cannot pass a gate of ten");
}

#[tokio::test(start_paused = true)]
async fn ten_commands_on_one_state_in_one_batch_lose_no_update() {
    // GIVEN a batch of ten `tally` commands on the same script, run side by side
    let t = crate::fixtures::bot();
    let (runner, poster) = runner(&t);
    let batch = batch_of("tally perf", BATCH_CONCURRENCY);
    // WHEN it runs: their saves race, and the losers run again on fresh state
    let failed = runner.process_batch(&batch, None).await;
    // THEN every one counted, once
    assert!(failed.is_empty(), "{failed:?}");
    let state: std::collections::BTreeMap<String, u64> = t.state("tally").await;
    assert_eq!(state["perf"], BATCH_CONCURRENCY as u64);
    assert_eq!(
        t.store.load("tally").await.unwrap().version,
        BATCH_CONCURRENCY as u64
    );
    assert_eq!(poster.posts().len(), BATCH_CONCURRENCY);
}

#[tokio::test]
async fn a_batch_reports_its_retries_in_the_batch_order() {
    // GIVEN a batch whose second and fourth records are held by another worker
    let t = crate::fixtures::bot();
    let (runner, _poster) = runner(&t);
    let jobs: Vec<Job> = (0..5)
        .map(|i| job(&format!("U{i}"), "tally perf"))
        .collect();
    for j in [&jobs[1], &jobs[3]] {
        t.store
            .claim(&j.id.to_string(), t.now(), LEASE)
            .await
            .unwrap();
    }
    let batch: Vec<QueueMessage> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| body_message(&format!("m-{i}"), j.encode(&key())))
        .collect();
    // WHEN it runs side by side
    let failed = runner.process_batch(&batch, None).await;
    // THEN exactly those two come back, named in order
    assert_eq!(failed, ["m-1", "m-3"]);
}

/// `hold <name>`: a command that runs until `release` is notified.
pub(super) fn holding(release: Arc<tokio::sync::Semaphore>) -> crate::engine::Script<()> {
    use crate::engine::{Command, Script};
    Script::new("hold").command(Command::new("hold").usage("<name>").handler(move |_ctx| {
        let release = release.clone();
        Box::pin(async move {
            let _go = release.acquire().await.expect("the test keeps it open");
            Ok(Reply::text("held and done"))
        })
    }))
}

#[tokio::test]
async fn the_inline_queue_refuses_past_its_limit_and_runs_everything_it_took() {
    // GIVEN `opkit serve`'s queue with room for three jobs, and jobs that run until released
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let t = TestBot::with(|b| b.script(holding(release.clone())));
    let (runner, poster) = runner(&t);
    let queue = InlineQueue::start(Arc::new(runner), 3);
    // WHEN five are put on it while the first three still run
    let results: Vec<_> = {
        let mut out = Vec::new();
        for i in 0..5 {
            out.push(queue.enqueue(&job(&format!("U{i}"), "hold x")).await);
        }
        out
    };
    // THEN three are taken and the other two refused as busy, not dropped unsaid
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    for refused in &results[3..] {
        assert!(
            matches!(refused, Err(QueueError::Busy { limit: 3 })),
            "{refused:?}"
        );
    }
    assert_eq!(queue.in_flight(), 3);
    // AND once they finish, every job it took ran, and it takes more again
    release.add_permits(10);
    queue.idle().await;
    assert_eq!(poster.posts().len(), 3);
    assert_eq!(queue.in_flight(), 0);
    queue.enqueue(&job("U9", "hold x")).await.unwrap();
    queue.idle().await;
    assert_eq!(poster.posts().len(), 4);
}

#[tokio::test]
async fn a_slash_command_on_a_full_queue_is_acked_with_busy() {
    // GIVEN the ack path of `opkit serve` over an in-process queue that holds one job
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let t = TestBot::with(|b| b.script(holding(release.clone())));
    let (runner, _poster) = runner(&t);
    let queue = Arc::new(InlineQueue::start(Arc::new(runner), 1));
    let config = crate::config::Config::from_lookup(|name| {
        (name == "SLACK_SIGNING_SECRET").then(|| "8f742231b10e8888abcd99yyyzzz85a5".to_string())
    })
    .unwrap();
    let ingress =
        crate::ingress::Ingress::new(&config, Arc::new(t.clock.clone()), queue.clone()).unwrap();
    let command = |text: &str| {
        crate::slack::SlashCommand::from_json(serde_json::json!({
            "token": "t", "team_id": "T0001", "team_domain": "x", "channel_id": "C1",
            "channel_name": "ops", "user_id": "U1", "user_name": "al", "command": "/opkit",
            "text": text, "response_url": "https://hooks.slack.com/commands/1",
            "trigger_id": "1.2.3"
        }))
        .unwrap()
    };
    let ack = |answer: crate::ingress::Answer| match answer.body.json() {
        Some(json) => json["text"].as_str().unwrap().to_string(),
        None => panic!("{answer:?}"),
    };
    // WHEN two commands come while the first still runs
    let first = ingress
        .accept(crate::ingress::Inbound::Command(command("hold a")))
        .await;
    let second = ingress
        .accept(crate::ingress::Inbound::Command(command("hold b")))
        .await;
    // THEN the first is taken and the second is told the bot is busy
    assert_eq!(ack(first), "Working on `hold a`…");
    assert_eq!(
        ack(second),
        "Sorry, I'm too busy to take your command right now; please try again in a moment."
    );
    assert_eq!(queue.in_flight(), 1);
    release.add_permits(1);
    queue.idle().await;
}

#[tokio::test(start_paused = true)]
async fn a_job_twice_in_one_batch_runs_once_and_neither_comes_back() {
    // GIVEN a replayed slash command: the same job twice in one batch, run side by
    // side — the second meets the claim while the first still waits on its API
    let t = TestBot::with(|b| {
        b.script(slow_api(Arc::new(tokio::sync::Barrier::new(1))))
            .script(crate::fixtures::tally())
    });
    let (runner, poster) = runner(&t);
    let j = job("UA", "wait x");
    let batch = [message(&j, 1), body_message("m-again", j.encode(&key()))];
    // WHEN the batch runs
    let failed = runner.process_batch(&batch, None).await;
    // THEN it ran once, and the second copy, found done, is not retried
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(poster.posts().len(), 1);
}
