//! A job `opkit serve`'s in-process queue refuses is told to its user even when
//! its ack cannot show it (tester G4: a mention past its user's places got HTTP
//! 503 — Slack retried it minutes later, or dropped it — and no answer).

use std::sync::Arc;

use serde_json::json;

use super::tests::{holding, job};
use super::*;
use crate::ingress::{Answer, Inbound, Ingress};
use crate::job::{JobQueue, QueueError};
use crate::slack::{EventRequest, MemoryChannelPoster, MemoryPoster};
use crate::testing::TestBot;

struct Serve {
    ingress: Ingress,
    queue: Arc<InlineQueue>,
    replies: Arc<MemoryPoster>,
    channel: Arc<MemoryChannelPoster>,
}

/// `opkit serve`'s ack path over an in-process queue holding one job per user,
/// its worker posting to `response_url`s and channels.
fn serve(t: &TestBot) -> Serve {
    let replies = Arc::new(MemoryPoster::new());
    let channel = Arc::new(MemoryChannelPoster::new());
    let worker = Worker::new(t.bot.clone(), replies.clone(), Some(channel.clone()))
        .with_progress_after(std::time::Duration::from_secs(3600));
    let key = EnvelopeKey::new("worker-test-envelope-key-0123456789").unwrap();
    let runner = JobRunner::new(Arc::new(worker), t.store.clone(), key);
    let queue = Arc::new(InlineQueue::start(Arc::new(runner), 64).per_user(1));
    let config = crate::config::Config::from_lookup(|name| {
        (name == "SLACK_SIGNING_SECRET").then(|| "8f742231b10e8888abcd99yyyzzz85a5".to_string())
    })
    .unwrap();
    let ingress = Ingress::new(&config, Arc::new(t.clock.clone()), queue.clone()).unwrap();
    Serve {
        ingress,
        queue,
        replies,
        channel,
    }
}

/// A mention of the bot by `user` in `C0001`, in the thread of its own message.
fn mention(event_id: &str, user: &str, text: &str) -> Inbound {
    let body = json!({
        "token": "unused", "team_id": "T0001", "api_app_id": "A0001",
        "event": {"type": "app_mention", "user": user, "text": format!("<@UBOT> {text}"),
                  "ts": "1795000000.000100", "channel": "C0001", "event_ts": "1795000000.000100"},
        "type": "event_callback", "event_id": event_id, "event_time": 1_795_000_000,
        "authorizations": [{"team_id": "T0001", "user_id": "UBOT", "is_bot": true, "is_enterprise_install": false}],
    });
    match EventRequest::from_json(body).unwrap() {
        EventRequest::EventCallback(callback) => Inbound::Event(callback),
        other => panic!("{other:?}"),
    }
}

/// Waits (on the tests' runtime) until `channel` has `n` posts.
async fn posts(channel: &MemoryChannelPoster, n: usize) -> Vec<crate::slack::ChannelPost> {
    for _ in 0..1000 {
        if channel.posts().len() >= n {
            break;
        }
        tokio::task::yield_now().await;
    }
    channel.posts()
}

#[tokio::test]
async fn a_mention_past_its_users_places_is_acked_and_its_user_told_they_are_busy() {
    // GIVEN `opkit serve`, one place per user, taken by UHOG's slow command
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let t = TestBot::with(|b| b.script(holding(release.clone())));
    let s = serve(&t);
    let first = s.ingress.accept(mention("Ev01", "UHOG", "hold a")).await;
    assert_eq!(first, Answer::empty());
    // WHEN UHOG mentions the bot again
    let second = s.ingress.accept(mention("Ev02", "UHOG", "hold b")).await;
    // THEN Slack gets a 200 (no retry minutes later, no failure counted)…
    assert_eq!(second, Answer::empty());
    // …and UHOG is told, only to them, in the thread they asked in
    let told = posts(&s.channel, 1).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].channel, "C0001");
    assert_eq!(told[0].only_for.as_deref(), Some("UHOG"));
    assert_eq!(told[0].thread_ts.as_deref(), Some("1795000000.000100"));
    assert_eq!(
        told[0].reply.text.to_string(),
        "Sorry, you already have 1 commands waiting or running; I did not take your message. \
         Please try again when one of them has finished."
    );
    // AND nothing more was queued; the first still runs and answers
    assert_eq!(s.queue.in_flight(), 1);
    release.add_permits(10);
    s.queue.idle().await;
    let answers: Vec<_> = s
        .channel
        .posts()
        .into_iter()
        .map(|p| p.reply.text.to_string())
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[1], "held and done");
}

#[tokio::test]
async fn an_event_slack_sends_again_while_it_runs_is_taken_once_and_nobody_told_busy() {
    // GIVEN UHOG's mention running, their one place taken by it
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let t = TestBot::with(|b| b.script(holding(release.clone())));
    let s = serve(&t);
    assert_eq!(
        s.ingress.accept(mention("Ev07", "UHOG", "hold a")).await,
        Answer::empty()
    );
    // WHEN Slack sends the same event again (its ack was late)
    let again = s.ingress.accept(mention("Ev07", "UHOG", "hold a")).await;
    // THEN it is acked and not queued again, and UHOG is not told they are busy
    assert_eq!(again, Answer::empty());
    assert_eq!(s.queue.in_flight(), 1);
    // AND it runs once
    release.add_permits(10);
    s.queue.idle().await;
    let posted = s.channel.posts();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0].reply.text.to_string(), "held and done");
}

#[tokio::test]
async fn a_refused_click_is_told_at_its_response_url_and_a_refused_command_only_by_its_ack() {
    // GIVEN `opkit serve`, UHOG's one place taken
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let t = TestBot::with(|b| b.script(holding(release.clone())));
    let s = serve(&t);
    s.queue.enqueue(&job("UHOG", "hold a")).await.unwrap();
    // WHEN a click of theirs comes (Slack shows no click's ack)
    let mut click = job("UHOG", "hold b");
    click.source = Source::Button;
    let refused = s.queue.enqueue(&click).await;
    assert!(matches!(refused, Err(QueueError::UserBusy { limit: 1 })));
    // THEN the queue posts the refusal to the click's response_url
    for _ in 0..1000 {
        if !s.replies.posts().is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let told = s.replies.posts();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].1.text.to_string().starts_with(
            "Sorry, you already have 1 commands waiting or running; I did not take that click."
        ),
        "{told:?}"
    );
    // AND a refused slash command is not posted: its ack says it
    let mut command = job("UHOG", "hold c");
    command.source = Source::SlashCommand {
        command: "/opkit".into(),
    };
    assert!(s.queue.enqueue(&command).await.is_err());
    release.add_permits(10);
    s.queue.idle().await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        s.replies.posts().len(),
        2,
        "the click's refusal and hold a's answer"
    );
}
