//! Scheduled runs on `opkit serve`'s in-process queue have a lane of their own
//! (tester G3: an owner's 9th+ schedule due in one pass was dropped unsaid — the
//! report counting it as run — and the owner's own commands were refused).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::tests::job;
use super::*;
use crate::expiry::Expiry;
use crate::ids::{ChannelId, UserId};
use crate::job::{JobQueue, QueueError};
use crate::schedule::{Entry, SCRIPT, ScheduleState, When};
use crate::slack::{MemoryChannelPoster, MemoryPoster};
use crate::store::StateStore;
use crate::testing::TestBot;
use crate::timespec::Tz;

/// A command that runs until `release` lets it go, counting how many of it run
/// at once (`now`) and the most that ever did (`most`).
fn counted_hold(
    release: Arc<tokio::sync::Semaphore>,
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
) -> crate::engine::Script<()> {
    use crate::engine::{Command, Script};
    Script::new("hold").command(Command::new("hold").usage("<name>").handler(move |_ctx| {
        let (release, now, most) = (release.clone(), now.clone(), most.clone());
        Box::pin(async move {
            let running = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(running, Ordering::SeqCst);
            let _go = release.acquire().await.expect("the test keeps it open");
            now.fetch_sub(1, Ordering::SeqCst);
            Ok(Reply::text("held and done"))
        })
    }))
}

/// Stores `count` schedules of `UOWN`, all due now, each running `hold <name>`
/// in `C0SCH`.
async fn due_schedules(t: &TestBot, count: usize) {
    let mut state = ScheduleState::default();
    for i in 1..=count {
        let name = format!("s{i:02}");
        state.entries.insert(
            name.clone(),
            Entry {
                name: name.clone(),
                when: When::parse("every 1h", Tz::UTC).unwrap(),
                channel: ChannelId::parse("C0SCH").unwrap(),
                run_as: UserId::parse("UOWN").unwrap(),
                text: format!("hold {name}"),
                next_at: t.now(),
                owner_told: false,
            },
        );
    }
    let encoded = serde_json::to_value(&state).unwrap();
    let encoded = crate::store::EncodedState::new(SCRIPT, encoded).unwrap();
    let version = t.store.load(SCRIPT).await.unwrap().version;
    t.store.save(SCRIPT, &encoded, version).await.unwrap();
}

struct Setup {
    queue: InlineQueue,
    expiry: Expiry,
    replies: Arc<MemoryPoster>,
    channel: Arc<MemoryChannelPoster>,
}

/// `opkit serve`'s wiring: an in-process queue holding at most `limit` jobs, two
/// per user, its worker posting to channels, and the expiry pass queuing on it.
fn serve(t: &TestBot, limit: usize) -> Setup {
    let replies = Arc::new(MemoryPoster::new());
    let channel = Arc::new(MemoryChannelPoster::new());
    let worker = Worker::new(t.bot.clone(), replies.clone(), Some(channel.clone()))
        .with_progress_after(std::time::Duration::from_secs(3600));
    let key = EnvelopeKey::new("worker-test-envelope-key-0123456789").unwrap();
    let runner = JobRunner::new(Arc::new(worker), t.store.clone(), key);
    let queue = InlineQueue::start(Arc::new(runner), limit).per_user(2);
    let expiry =
        Expiry::new(t.bot.clone(), Some(channel.clone())).with_queue(Arc::new(queue.clone()));
    Setup {
        queue,
        expiry,
        replies,
        channel,
    }
}

#[tokio::test]
async fn an_owners_due_schedules_all_run_in_their_lane_and_leave_the_owner_their_places() {
    // GIVEN `opkit serve` (two places per user), and ten schedules of UOWN due
    // at once, running a command that holds until released
    let (release, now, most) = (
        Arc::new(tokio::sync::Semaphore::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let hold = counted_hold(release.clone(), now.clone(), most.clone());
    let t = TestBot::with(|b| b.script(hold));
    due_schedules(&t, 10).await;
    let s = serve(&t, 64);
    // WHEN the expiry pass runs them
    let report = s.expiry.run_once().await.unwrap();
    // THEN all ten are queued, and the report says so
    assert_eq!((report.scheduled_runs, report.scheduled_not_run), (10, 0));
    // AND UOWN's own commands are still taken, as many as their places
    s.queue.enqueue(&job("UOWN", "hold mine1")).await.unwrap();
    s.queue.enqueue(&job("UOWN", "hold mine2")).await.unwrap();
    assert!(matches!(
        s.queue.enqueue(&job("UOWN", "hold mine3")).await,
        Err(QueueError::UserBusy { limit: 2 })
    ));
    // AND at most INLINE_SCHEDULED_RUNNING scheduled runs run at once (with
    // UOWN's two)
    while now.load(Ordering::SeqCst) < INLINE_SCHEDULED_RUNNING + 2 {
        tokio::task::yield_now().await;
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(most.load(Ordering::SeqCst), INLINE_SCHEDULED_RUNNING + 2);
    // AND once released, every schedule's answer is posted in its channel
    release.add_permits(100);
    s.queue.idle().await;
    let posted: Vec<_> = s
        .channel
        .posts()
        .into_iter()
        .filter(|p| p.channel == "C0SCH")
        .map(|p| p.reply.text.to_string())
        .collect();
    assert_eq!(posted.len(), 10, "{posted:#?}");
    for i in 1..=10 {
        let name = format!("`s{i:02}`");
        assert!(
            posted.iter().any(|p| p.contains(&name)),
            "{name}: {posted:#?}"
        );
    }
    assert_eq!(s.replies.posts().len(), 2);
}

#[tokio::test]
async fn a_scheduled_run_the_queue_does_not_take_is_reported_and_said_in_its_channel() {
    // GIVEN `opkit serve` with room for three jobs, and five schedules due
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let hold = counted_hold(release.clone(), Arc::default(), Arc::default());
    let t = TestBot::with(|b| b.script(hold));
    due_schedules(&t, 5).await;
    let s = serve(&t, 3);
    // WHEN the expiry pass runs them
    let report = s.expiry.run_once().await.unwrap();
    // THEN three are queued and two not run, and the report tells them apart
    assert_eq!((report.scheduled_runs, report.scheduled_not_run), (3, 2));
    // AND each run not taken is said in its channel, marked as its schedule's
    let said: Vec<_> = s
        .channel
        .posts()
        .into_iter()
        .map(|p| p.reply.text.to_string())
        .collect();
    assert_eq!(said.len(), 2, "{said:#?}");
    assert_eq!(report.posted, 2);
    assert_eq!(
        said[0],
        "Sorry, `hold s04` did not run this time: I had too many commands waiting or running \
         to take it. It runs again when it is next due.\n_Scheduled `s04`, run as <@UOWN>_"
    );
    // AND the runs taken still run and answer
    release.add_permits(100);
    s.queue.idle().await;
    assert_eq!(s.channel.posts().len(), 5);
}
