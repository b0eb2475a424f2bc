//! `opkit serve`'s in-process queue is fair: one user's jobs cannot hold every
//! runner (tester F11: 96 slow commands from one user delayed everyone's by 15 s).

use std::sync::Arc;

use super::tests::{holding, job, runner};
use super::*;
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
