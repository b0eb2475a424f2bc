//! `opkit serve`'s in-process queue is fair: one user's jobs cannot hold every
//! runner (tester F11: 96 slow commands from one user delayed everyone's by 15 s),
//! nor for ever: each job has a time limit (tester G15: a call that never answered
//! locked its user out until a restart).

use std::sync::Arc;

use super::tests::{holding, job, runner};
use super::*;
use crate::audit::Outcome;
use crate::job::{JobQueue, QueueError};
use crate::testing::TestBot;

#[tokio::test]
async fn one_users_jobs_cannot_fill_the_queue_and_everyone_elses_still_run() {
    // GIVEN the in-process queue, room for 8 jobs, 2 of them one user's, and
    // jobs that run until released
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let t = TestBot::with(|b| b.script(holding(release.clone())));
    let (runner, poster) = runner(&t);
    let queue = InlineQueue::start(Arc::new(runner), 8).per_user(2);
    // WHEN one user sends five slow commands
    let mut eve = Vec::new();
    for _ in 0..5 {
        eve.push(queue.enqueue(&job("UEVE", "hold x")).await);
    }
    // THEN two are taken and the rest refused, telling that user why
    assert!(eve[..2].iter().all(Result::is_ok), "{eve:?}");
    for refused in &eve[2..] {
        assert!(
            matches!(refused, Err(QueueError::UserBusy { limit: 2 })),
            "{refused:?}"
        );
    }
    let told = eve[2].as_ref().unwrap_err().tell_user("your command");
    assert!(
        told.contains("you already have 2 commands waiting or running"),
        "{told}"
    );
    // AND another user's command is still taken
    queue.enqueue(&job("UBOB", "hold y")).await.unwrap();
    assert_eq!(queue.in_flight(), 3);
    // AND once the jobs finish, the first user may send again
    release.add_permits(10);
    queue.idle().await;
    assert_eq!(poster.posts().len(), 3);
    queue.enqueue(&job("UEVE", "hold z")).await.unwrap();
    queue.enqueue(&job("UEVE", "hold z2")).await.unwrap();
    queue.idle().await;
    assert_eq!(poster.posts().len(), 5);
}

#[tokio::test]
async fn a_job_the_full_queue_refuses_does_not_count_against_its_user() {
    // GIVEN a queue with room for one job, full with another user's
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let t = TestBot::with(|b| b.script(holding(release.clone())));
    let (runner, _poster) = runner(&t);
    let queue = InlineQueue::start(Arc::new(runner), 1).per_user(1);
    queue.enqueue(&job("UBOB", "hold x")).await.unwrap();
    // WHEN a user's command is refused because the queue is full
    assert!(matches!(
        queue.enqueue(&job("UEVE", "hold y")).await,
        Err(QueueError::Busy { limit: 1 })
    ));
    // THEN once there is room again, that user's next command is taken
    release.add_permits(10);
    queue.idle().await;
    queue.enqueue(&job("UEVE", "hold y")).await.unwrap();
    queue.idle().await;
}

/// Waits for `queue` to be idle; fails if it is not within an hour (of the
/// tests' paused clock: at once).
async fn idle_within_an_hour(queue: &InlineQueue) {
    tokio::time::timeout(std::time::Duration::from_secs(3600), queue.idle())
        .await
        .expect("the queue's jobs end");
}

/// A command that never finishes (an AWS call that never answers, tester G15).
fn never_finishing() -> (TestBot, Arc<tokio::sync::Semaphore>) {
    let never = Arc::new(tokio::sync::Semaphore::new(0));
    let t = TestBot::with(|b| b.script(holding(never.clone())));
    (t, never)
}

#[tokio::test(start_paused = true)]
async fn a_job_that_never_finishes_is_abandoned_at_its_time_limit_and_its_user_told() {
    // GIVEN the in-process queue, two places per user, and commands that never finish
    let (t, never) = never_finishing();
    let (runner, poster) = runner(&t);
    let queue = InlineQueue::start(Arc::new(runner), 8).per_user(2);
    // WHEN a user's two commands fill their places
    let hung = [job("UHANG", "hold a"), job("UHANG", "hold b")];
    for j in &hung {
        queue.enqueue(j).await.unwrap();
    }
    assert!(matches!(
        queue.enqueue(&job("UHANG", "hold c")).await,
        Err(QueueError::UserBusy { limit: 2 })
    ));
    // AND the time limit passes (the worker Lambda's timeout)
    assert_eq!(INLINE_TIME_LIMIT, std::time::Duration::from_secs(30));
    tokio::time::sleep(INLINE_TIME_LIMIT + std::time::Duration::from_secs(1)).await;
    idle_within_an_hour(&queue).await;
    // THEN each was abandoned, and its user told plainly what that means
    let posts = poster.posts();
    assert_eq!(posts.len(), 2, "{posts:?}");
    for (_, reply) in &posts {
        assert!(
            reply
                .text
                .contains("did not finish within 30 s, so I stopped waiting for it")
                && reply.text.contains("may have done some or all of its work")
                && reply.text.contains("check before you run it again"),
            "{}",
            reply.text
        );
    }
    assert!(posts.iter().any(|(_, r)| r.text.contains("`hold a`")));
    // AND each is audited as failed, naming its command
    let failed: Vec<_> = t
        .audit(20)
        .await
        .into_iter()
        .filter(|r| matches!(&r.outcome, Outcome::Failed { error } if error.contains("time limit")))
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().all(|r| r.command.as_deref() == Some("hold")));
    // AND the user's places are free again
    assert_eq!(queue.in_flight(), 0);
    queue.enqueue(&job("UHANG", "hold c")).await.unwrap();
    // AND an abandoned job delivered again (Slack resending an event) does not run again
    queue.enqueue(&hung[0]).await.unwrap();
    never.add_permits(10);
    queue.idle().await;
    let posts = poster.posts();
    assert_eq!(posts.len(), 3, "{posts:?}");
    assert_eq!(posts[2].1.text, "held and done");
}

#[tokio::test(start_paused = true)]
async fn hung_jobs_of_four_users_hold_the_runners_only_until_their_time_limit() {
    // GIVEN the in-process queue, every runner held by four users' commands
    // that never finish
    let never = Arc::new(tokio::sync::Semaphore::new(0));
    let t = TestBot::with(|b| {
        b.script(holding(never.clone()))
            .script(crate::fixtures::tally())
    });
    let (runner, poster) = runner(&t);
    let limit = std::time::Duration::from_secs(5);
    let queue = InlineQueue::start(Arc::new(runner), 1024).time_limit(limit);
    for i in 0..INLINE_CONCURRENCY {
        let user = format!("U{}", i / INLINE_PER_USER);
        queue.enqueue(&job(&user, "hold x")).await.unwrap();
    }
    // WHEN someone else's command waits for a runner
    queue.enqueue(&job("UBOB", "tally perf")).await.unwrap();
    tokio::time::sleep(limit / 2).await;
    assert!(poster.posts().is_empty());
    // THEN once the hung commands reach their limit, each is answered "stopped",
    // and the waiting command runs
    idle_within_an_hour(&queue).await;
    let posts = poster.posts();
    assert_eq!(posts.len(), INLINE_CONCURRENCY + 1);
    let stopped = posts
        .iter()
        .filter(|(_, r)| r.text.contains("did not finish within 5 s"))
        .count();
    assert_eq!(stopped, INLINE_CONCURRENCY);
    assert!(
        posts
            .iter()
            .any(|(_, r)| r.text == "<@UBOB> counted *perf* (1).")
    );
}
