//! Catbot's packs through Opkit's expiry pass: queue holds that run out hand
//! over, and scheduled commands run as their owner.

use std::sync::Arc;

use chrono::Duration;

use catbot::packs::{queue, schedule};
use opkit::expiry::Expiry;
use opkit::slack::MemoryChannelPoster;
use opkit::store::AuditLog;
use opkit::testing::{RecordingQueue, TestBot};

fn expiry(t: &TestBot) -> (Expiry, Arc<MemoryChannelPoster>) {
    let poster = Arc::new(MemoryChannelPoster::new());
    (Expiry::new(t.bot.clone(), Some(poster.clone())), poster)
}

fn bot() -> TestBot {
    TestBot::with(|b| {
        b.script(queue::script())
            .script(schedule::script(schedule::default_managers()))
    })
}

#[tokio::test]
async fn queue_holds_end_in_the_same_pass() {
    let t = bot();
    t.say("UA", "queue join perf for 30m").await;
    t.say("UB", "queue join perf").await;
    t.advance(Duration::minutes(30));
    let (expiry, poster) = expiry(&t);
    let report = expiry.run_once().await.unwrap();
    assert_eq!(report.script_notices, 1);
    assert_eq!(
        poster.posts()[0].reply.text,
        "<@UA>'s time on *perf* is up; <@UB> is up now."
    );
}

#[tokio::test]
async fn scheduled_commands_run_as_their_owner_when_due_and_post_to_their_channel() {
    let t = bot();
    t.say("UA", "queue join perf").await;
    t.say(
        "UADMIN",
        "schedule add standup \"every 1h\" <#C9|ops> queue status",
    )
    .await;
    let (expiry, poster) = expiry(&t);
    assert_eq!(
        expiry.run_once().await.unwrap().scheduled_runs,
        0,
        "not due yet"
    );
    t.advance(Duration::hours(1));
    let report = expiry.run_once().await.unwrap();
    assert_eq!((report.scheduled_runs, report.posted), (1, 1));
    assert_eq!(
        expiry.run_once().await.unwrap().scheduled_runs,
        0,
        "runs once per due time"
    );
    let post = &poster.posts()[0];
    assert_eq!(post.channel, "C9");
    assert_eq!(
        post.reply.text,
        "*perf*: <@UA> holds it\n_Scheduled `standup`, run as <@UADMIN>_"
    );
    assert_eq!(post.reply.visibility, opkit::slack::Visibility::InChannel);
    let audit = t.store.recent(None, 1).await.unwrap();
    assert_eq!(
        audit[0].user.as_str(),
        "UADMIN",
        "audited as the schedule's identity"
    );
    assert_eq!(audit[0].command.as_deref(), Some("queue status"));
}

#[tokio::test]
async fn with_a_queue_scheduled_commands_become_jobs_once() {
    let t = bot();
    t.say(
        "UADMIN",
        "schedule add standup \"every 1h\" <#C9|ops> queue status",
    )
    .await;
    t.advance(Duration::hours(1));
    let queue = Arc::new(RecordingQueue::default());
    let (expiry, poster) = expiry(&t);
    let expiry = expiry.with_queue(queue.clone());
    assert_eq!(expiry.run_once().await.unwrap().scheduled_runs, 1);
    assert_eq!(expiry.run_once().await.unwrap().scheduled_runs, 0);
    let jobs = queue.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].text, "queue status");
    assert_eq!(jobs[0].caller.user.as_str(), "UADMIN");
    assert!(
        poster.posts().is_empty(),
        "the worker answers, not the pass"
    );
}

#[tokio::test]
async fn a_schedule_whose_owner_lost_the_role_posts_the_refusal() {
    let t = bot();
    t.say("UADMIN", "roles grant <@UBOB> admin for 30m").await;
    t.say("UBOB", "schedule add trail \"every 1h\" <#C9> audit last 1")
        .await;
    t.advance(Duration::hours(1));
    let (expiry, poster) = expiry(&t);
    expiry.run_once().await.unwrap();
    let posted: Vec<String> = poster
        .posts()
        .iter()
        .map(|p| p.reply.text.to_string())
        .collect();
    assert!(
        posted
            .iter()
            .any(|p| p.starts_with("Sorry, you need admin to run `audit`.")),
        "{posted:?}"
    );
}
