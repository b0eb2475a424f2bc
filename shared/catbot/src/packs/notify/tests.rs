//! The notifications, handler-deep: the memory store, a recording poster and a
//! manual clock; events in the shapes EventBridge documents.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use opkit::slack::web::MemoryChannelPoster;
use opkit::testing::{ADMIN, CHANNEL, TestBot};
use serde_json::Value;

use super::*;

const ALARM_EVENT: &str = include_str!("../../../../../events/notify/alarm_state_change.json");

/// The documented alarm event, renamed, moved to `state` (from `previous`) at `at`.
pub(super) fn change(name: &str, previous: &str, state: &str, at: DateTime<Utc>) -> String {
    let mut event: Value = serde_json::from_str(ALARM_EVENT).unwrap();
    event["id"] = format!("{name}-{state}-{}", at.timestamp_millis()).into();
    event["detail"]["alarmName"] = name.into();
    event["detail"]["previousState"]["value"] = previous.into();
    event["detail"]["state"]["value"] = state.into();
    event["detail"]["state"]["timestamp"] =
        at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string().into();
    event.to_string()
}

pub(super) struct Rig {
    pub(super) t: TestBot,
    pub(super) posts: Arc<MemoryChannelPoster>,
    pub(super) notifier: Notifier,
}

pub(super) fn rig() -> Rig {
    let posts = Arc::new(MemoryChannelPoster::new());
    let opts = NotifyOptions {
        channels: Some(posts.clone()),
        ..NotifyOptions::default()
    };
    let t = TestBot::with(|b| b.script(script(opts)));
    let notifier = Notifier::new(t.bot.clone(), Some(posts.clone()));
    Rig { t, posts, notifier }
}

impl Rig {
    pub(super) async fn notify(&self, body: &str) -> Outcome {
        self.notifier.handle(body).await.expect("handled")
    }
}

#[tokio::test]
async fn an_alarms_name_and_reason_make_no_line_of_their_own() {
    // GIVEN a subscription, and an alarm whose name and reason hold a made-up
    // line (CloudWatch allows line breaks in both: tester 6, G9)
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe api-").await;
    let name = "api-5xx\n> *Security says: ignore this alarm*";
    let mut event: serde_json::Value =
        serde_json::from_str(&change(name, "OK", "ALARM", r.t.now())).unwrap();
    event["detail"]["state"]["reason"] = "Threshold crossed\n> *all clear*".into();
    // WHEN it goes into ALARM
    let out = r.notify(&event.to_string()).await;
    assert_eq!(out.posted, 1);
    // THEN no line of the message, its blocks included, starts with their text
    let reply = &r.posts.posts()[0].reply;
    let texts = std::iter::once(reply.text.to_string()).chain(reply.blocks.iter().filter_map(
        |b| match b {
            opkit::slack::Block::Section { text } => Some(text.to_string()),
            _ => None,
        },
    ));
    for text in texts {
        assert!(
            !text.lines().any(|l| l.starts_with("&gt;")),
            "a line of its own: {text}"
        );
    }
    assert!(
        reply
            .text
            .as_str()
            .contains("*api-5xx⏎&gt; *Security says: ignore this alarm**"),
        "{}",
        reply.text.as_str()
    );
}

#[tokio::test]
async fn a_change_is_posted_to_each_subscribed_channel_and_no_other() {
    let r = rig();
    let reply = r.t.text(ADMIN, "alarms subscribe api-").await;
    assert!(
        reply.contains("will hear when alarms named *api-…* go into ALARM or OK"),
        "{reply}"
    );
    let at = r.t.now();
    let out = r.notify(&change("api-5xx", "OK", "ALARM", at)).await;
    assert_eq!(out.posted, 1);
    let other = r.notify(&change("db-cpu", "OK", "ALARM", at)).await;
    assert_eq!(other.quiet, Some(incident::Why::NoSubscriber));
    let posts = r.posts.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].channel, CHANNEL);
    let text = posts[0].reply.text.as_str();
    assert!(text.contains("*api-5xx* is ALARM"), "{text}");
    let buttons: Vec<&str> = posts[0]
        .reply
        .blocks
        .iter()
        .filter_map(|b| match b {
            opkit::slack::Block::Actions { buttons } => Some(buttons),
            _ => None,
        })
        .flatten()
        .map(|b| b.value.as_str())
        .collect();
    assert_eq!(
        buttons,
        [
            "graph \"api-5xx\" in us-east-1",
            "alarms ack \"api-5xx\" in 123456789012 us-east-1",
            "alarms mute \"api-5xx\" in 123456789012 us-east-1 for 1h",
            "alarms mute \"api-5xx\" in 123456789012 us-east-1 for 4h"
        ]
    );
}

#[tokio::test]
async fn a_repeat_or_an_older_change_posts_nothing_and_changes_nothing() {
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe all all").await;
    let at = r.t.now();
    let alarm = change("api-5xx", "OK", "ALARM", at);
    assert_eq!(r.notify(&alarm).await.posted, 1);
    let before: NotifyState = r.t.state(SCRIPT).await;
    // the same event again (EventBridge delivers at least once)
    assert_eq!(r.notify(&alarm).await.quiet, Some(incident::Why::NotNewer));
    // an older change, delivered late
    let late = change(
        "api-5xx",
        "INSUFFICIENT_DATA",
        "OK",
        at - Duration::minutes(3),
    );
    assert_eq!(r.notify(&late).await.quiet, Some(incident::Why::NotNewer));
    assert_eq!(r.posts.posts().len(), 1);
    let after: NotifyState = r.t.state(SCRIPT).await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn recovery_replies_in_the_thread_and_updates_the_original_with_the_duration() {
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe api-").await;
    let at = r.t.now();
    r.notify(&change("api-5xx", "OK", "ALARM", at)).await;
    let original = r.posts.posts()[0].ts.clone();
    r.t.advance(Duration::minutes(14));
    let out = r
        .notify(&change(
            "api-5xx",
            "ALARM",
            "OK",
            at + Duration::minutes(14),
        ))
        .await;
    assert_eq!((out.posted, out.updated), (1, 1));
    let posts = r.posts.posts();
    let reply = &posts[1];
    assert_eq!(reply.thread_ts.as_deref(), Some(original.as_str()));
    assert!(
        reply.reply.text.as_str().contains("back to OK after 14m"),
        "{}",
        reply.reply.text
    );
    let update = &posts[2];
    assert!(update.updated);
    assert_eq!(update.ts, original);
    assert!(
        update
            .reply
            .text
            .as_str()
            .contains("is OK again: in ALARM for 14m"),
        "{}",
        update.reply.text
    );
    assert!(
        !update
            .reply
            .blocks
            .iter()
            .any(|b| matches!(b, opkit::slack::Block::Actions { .. })),
        "an ended incident has no buttons"
    );
}

#[tokio::test]
async fn flapping_is_summarised_in_one_thread() {
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe api-").await;
    let at = r.t.now();
    let minute = |n| at + Duration::minutes(n);
    r.notify(&change("api-5xx", "OK", "ALARM", minute(0))).await;
    for n in 1..=6 {
        let (from, to) = if n % 2 == 1 {
            ("ALARM", "OK")
        } else {
            ("OK", "ALARM")
        };
        r.t.advance(Duration::minutes(1));
        r.notify(&change("api-5xx", from, to, minute(n))).await;
    }
    let posts = r.posts.posts();
    let new_messages = posts
        .iter()
        .filter(|p| p.thread_ts.is_none() && !p.updated)
        .count();
    assert_eq!(new_messages, 1, "one incident, one message: {posts:#?}");
    let state: NotifyState = r.t.state(SCRIPT).await;
    let incident = state
        .alarms
        .values()
        .next()
        .unwrap()
        .incident
        .clone()
        .unwrap();
    assert_eq!(incident.changes, 6);
}

#[tokio::test]
async fn acknowledge_records_who_and_redraws_the_message() {
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe api-").await;
    r.notify(&change("api-5xx", "OK", "ALARM", r.t.now())).await;
    let message = r.posts.posts()[0].reply.clone();
    let reply = r.t.press("UBOB", &message, "Acknowledge").await;
    assert_eq!(
        reply.text.as_str(),
        ":eyes: <@UBOB> acknowledged *api-5xx* (account 123456789012, us-east-1)."
    );
    let redrawn = r.posts.posts().last().cloned().unwrap();
    assert!(redrawn.updated);
    assert!(format!("{:?}", redrawn.reply.blocks).contains("acknowledged by <@UBOB>"));
    // audited as the command it stands for, by the clicker
    let audit = r.t.audit(1).await;
    assert_eq!(audit[0].user.as_str(), "UBOB");
    assert!(
        format!("{:?}", audit[0]).contains("alarms ack"),
        "{:?}",
        audit[0]
    );
}

#[tokio::test]
async fn mute_needs_the_role_silences_the_alarm_and_ends_on_time() {
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe api-").await;
    r.notify(&change("api-5xx", "OK", "ALARM", r.t.now())).await;
    let message = r.posts.posts()[0].reply.clone();
    // a user without ops or admin may not mute
    let refused = r.t.press("UBOB", &message, "Mute 1h").await;
    assert!(!refused.text.as_str().contains("muted"), "{}", refused.text);
    let muted = r.t.press(ADMIN, &message, "Mute 1h").await;
    assert!(
        muted
            .text
            .as_str()
            .contains("muted *api-5xx* (account 123456789012, us-east-1) until"),
        "{}",
        muted.text
    );
    let before = r.posts.posts().len();
    // muted: changes are recorded, not posted
    let out = r
        .notify(&change(
            "api-5xx",
            "ALARM",
            "INSUFFICIENT_DATA",
            // (within incident::MAX_SKEW of the clock)
            r.t.now() + Duration::minutes(4),
        ))
        .await;
    assert_eq!(out.quiet, Some(incident::Why::Muted));
    assert_eq!(r.posts.posts().len(), before);
    // the ticker ends it on time and says so in the incident's thread
    let mut state: NotifyState = r.t.state(SCRIPT).await;
    assert!(end_mutes(&mut state, r.t.now() + Duration::minutes(59)).is_empty());
    let notices = end_mutes(&mut state, r.t.now() + Duration::minutes(60));
    assert_eq!(notices.len(), 1);
    assert_eq!(
        notices[0].thread_ts.as_deref(),
        Some(r.posts.posts()[0].ts.as_str())
    );
    // naming the place, as the unmute reply does (tester F15)
    let text = notices[0].text.as_str();
    assert!(
        text.contains("*api-5xx* (account 123456789012, us-east-1) is no longer muted"),
        "{text}"
    );
}

#[tokio::test]
async fn whoever_watches_an_alarm_gets_a_direct_message_when_it_changes() {
    use opkit::store::{EncodedState, StateStore};
    let r = rig();
    // the `cloudwatch` script's state as `alarms watch api-5xx` by Bob leaves it
    let watched = serde_json::json!({"watched": ["api-5xx"], "watchers": {"api-5xx": ["UBOB"]}});
    let watched = EncodedState::new("cloudwatch", watched).unwrap();
    r.t.store.save("cloudwatch", &watched, 0).await.unwrap();
    let fired = change("api-5xx", "OK", "ALARM", r.t.now());
    // no channel subscribed: Bob alone hears of it
    assert_eq!(r.notify(&fired).await.posted, 1);
    let posts = r.posts.posts();
    assert_eq!(posts[0].channel, "UBOB");
    assert!(
        posts[0]
            .reply
            .text
            .as_str()
            .contains("*api-5xx* is ALARM (was OK)")
    );
    // told once, and not of alarms he does not watch
    r.notify(&fired).await;
    r.notify(&change("db-cpu", "OK", "ALARM", r.t.now())).await;
    assert_eq!(r.posts.posts().len(), 1);
}

#[tokio::test]
async fn malformed_events_are_refused_without_a_post_or_a_retry() {
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe all").await;
    for body in [
        "",
        "{}",
        "[1]",
        r#"{"source":"aws.cloudwatch","detail-type":"CloudWatch Alarm State Change"}"#,
    ] {
        let err = r.notifier.handle(body).await.unwrap_err();
        assert!(!err.is_retryable(), "{err}");
    }
    assert!(r.posts.posts().is_empty());
}

#[tokio::test]
async fn alarm_names_are_shown_as_text_never_as_markup() {
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe all").await;
    r.notify(&change("<!channel> api", "OK", "ALARM", r.t.now()))
        .await;
    let text = r.posts.posts()[0].reply.text.as_str().to_string();
    assert!(text.contains("&lt;!channel&gt; api"), "{text}");
    assert!(!text.contains("<!channel>"), "{text}");
}

#[tokio::test]
async fn subscriptions_are_listed_checked_and_removed() {
    let r = rig();
    assert!(
        r.t.text("UBOB", "alarms subscribe all")
            .await
            .contains("ops"),
        "needs a role"
    );
    let bad = r.t.text(ADMIN, "alarms subscribe api- on_fire").await;
    assert!(bad.contains("is not a state"), "{bad}");
    r.t.text(ADMIN, "alarms subscribe api- alarm").await;
    let list = r.t.text("UBOB", "alarms subscriptions").await;
    assert!(list.contains("alarms named *api-…* (ALARM)"), "{list}");
    assert!(
        r.t.text(ADMIN, "alarms unsubscribe api-")
            .await
            .contains("no longer hears")
    );
    let none = r.t.text(ADMIN, "alarms unsubscribe api-").await;
    assert!(none.contains("is not subscribed"), "{none}");
}

const EC2_EVENT: &str = include_str!("../../../../../events/notify/ec2_state_change.json");

/// The documented instance event, for `instance` entering `state` at `at`.
pub(super) fn instance_change(instance: &str, state: &str, at: DateTime<Utc>) -> String {
    let mut event: Value = serde_json::from_str(EC2_EVENT).unwrap();
    event["id"] = format!("{instance}-{state}-{}", at.timestamp_millis()).into();
    event["detail"]["instance-id"] = instance.into();
    event["detail"]["state"] = state.into();
    event["time"] = at.to_rfc3339().into();
    event.to_string()
}

/// Every instance is managed.
struct AllManaged;

impl ManagedInstances for AllManaged {
    fn is_managed<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> opkit::BoxFuture<'a, Result<bool, String>> {
        Box::pin(std::future::ready(Ok(true)))
    }
}

/// The states `ec2 stop` expects.
const STOP: [&str; 2] = ["stopping", "stopped"];

/// A rig whose channel hears of managed instances (all of them are), the admin,
/// and the instance `i-0aaa`.
async fn instances_rig() -> (Rig, opkit::ids::UserId, [String; 1]) {
    let mut r = rig();
    r.notifier = r.notifier.clone().with_instances(Arc::new(AllManaged));
    r.t.text(ADMIN, "ec2 subscribe").await;
    let admin = opkit::ids::UserId::parse(ADMIN).unwrap();
    (r, admin, ["i-0aaa".to_string()])
}

#[tokio::test]
async fn an_instance_change_opkit_asked_for_is_not_news_and_anyone_elses_is() {
    // GIVEN a channel that hears of managed instances
    let (r, admin, ids) = instances_rig().await;
    let opkit_stops = || expect_own_changes(&r.t.bot, None, "us-east-1", &ids, &STOP, &admin);
    // WHEN Opkit stops the instance (as `ec2 stop` records before it calls EC2)
    opkit_stops().await;
    let at = r.t.now();
    // THEN its stopping and stopped events post nothing
    for (state, s) in [("stopping", 5), ("stopped", 40)] {
        let out = r
            .notify(&instance_change("i-0aaa", state, at + Duration::seconds(s)))
            .await;
        assert_eq!(out.quiet, Some(incident::Why::AskedByOpkit), "{state}");
    }
    assert!(r.posts.posts().is_empty());
    // AND when someone outside Opkit starts it and stops it again, each is posted
    for (state, m) in [("running", 2), ("stopped", 4)] {
        let out = r
            .notify(&instance_change("i-0aaa", state, at + Duration::minutes(m)))
            .await;
        assert_eq!(out.posted, 1, "{state}");
    }
    // AND another instance was never Opkit's doing
    opkit_stops().await;
    let other = r
        .notify(&instance_change(
            "i-0bbb",
            "stopped",
            at + Duration::minutes(5),
        ))
        .await;
    assert_eq!(other.posted, 1);
    let texts: Vec<String> = r
        .posts
        .posts()
        .iter()
        .map(|p| p.reply.text.to_string())
        .collect();
    assert!(texts[0].contains("Instance i-0aaa is running"), "{texts:?}");
}

/// [`instance_change`] in `account` and `region`.
fn instance_change_in(
    account: &str,
    region: &str,
    instance: &str,
    state: &str,
    at: DateTime<Utc>,
) -> String {
    let mut event: Value = serde_json::from_str(&instance_change(instance, state, at)).unwrap();
    event["account"] = account.into();
    event["region"] = region.into();
    event.to_string()
}

#[tokio::test]
async fn opkits_own_change_in_a_named_account_is_matched_on_its_region_and_account_id() {
    // GIVEN Opkit stopping an instance in account prod (111111111111, us-west-2),
    // recorded as `ec2 stop` records it: the region and account id, not the
    // place's label (the finding F4: `account prod, us-west-2` was stored)
    let (r, admin, ids) = instances_rig().await;
    let prod = Some("111111111111");
    expect_own_changes(&r.t.bot, prod, "us-west-2", &ids, &STOP, &admin).await;
    let at = r.t.now() + Duration::seconds(2);
    // WHEN the same instance id is announced by another account, or another region
    for (account, region) in [("222222222222", "us-west-2"), ("111111111111", "eu-west-1")] {
        let out = r
            .notify(&instance_change_in(
                account, region, "i-0aaa", "stopping", at,
            ))
            .await;
        // THEN that is someone else's change, and posted
        assert_eq!(out.posted, 1, "{account} {region}");
    }
    // AND prod's own events in us-west-2 are Opkit's doing: not posted
    for (state, s) in [("stopping", 3), ("stopped", 30)] {
        let when = at + Duration::seconds(s);
        let out = r
            .notify(&instance_change_in(
                "111111111111",
                "us-west-2",
                "i-0aaa",
                state,
                when,
            ))
            .await;
        assert_eq!(out.quiet, Some(incident::Why::AskedByOpkit), "{state}");
    }
    assert_eq!(r.posts.posts().len(), 2);
}

#[tokio::test]
async fn opkits_own_change_is_forgotten_after_its_time() {
    use opkit::store::StateStore;
    let (r, admin, ids) = instances_rig().await;
    let start = ["pending", "running"];
    expect_own_changes(&r.t.bot, None, "us-east-1", &ids, &start, &admin).await;
    // an event long after Opkit's start is someone else's
    r.t.advance(state::OWN_CHANGE_TTL + Duration::minutes(1));
    let late = r
        .notify(&instance_change("i-0aaa", "running", r.t.now()))
        .await;
    assert_eq!(late.posted, 1);
    let saved: NotifyState =
        serde_json::from_value(r.t.store.load(SCRIPT).await.unwrap().value.unwrap()).unwrap();
    assert!(saved.own_changes.is_empty(), "forgotten: {saved:?}");
}

#[test]
fn opkits_own_changes_are_capped_oldest_first() {
    let mut state = NotifyState::default();
    let by = opkit::ids::UserId::parse("UBOB").unwrap();
    let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    for n in 0..state::MAX_OWN_CHANGES + 5 {
        let ids = [format!("i-{n:04}")];
        state.expect_own_changes(None, "r", &ids, &["stopped"], &by, at);
    }
    assert_eq!(state.own_changes.len(), state::MAX_OWN_CHANGES);
    assert_eq!(state.own_changes[0].instance, "i-0005");
    assert_eq!(
        state.take_own_change("1", "r", "i-0001", "stopped", at),
        None
    );
    assert_eq!(
        state.take_own_change("1", "r", "i-0006", "stopped", at),
        Some(by.clone())
    );
    // each announced state is quiet once
    assert_eq!(
        state.take_own_change("1", "r", "i-0006", "stopped", at),
        None
    );
    // an event from before Opkit asked (past the clocks' skew) is not its doing
    let early = at - state::OWN_CHANGE_SKEW - Duration::seconds(1);
    assert_eq!(
        state.take_own_change("1", "r", "i-0007", "stopped", early),
        None
    );
}

/// Alarm tags as CloudWatch would answer, or a failure.
struct Tags(Result<Vec<(String, String)>, String>);

impl AlarmTags for Tags {
    fn tags<'a>(
        &'a self,
        arn: &'a str,
    ) -> opkit::BoxFuture<'a, Result<Vec<(String, String)>, String>> {
        assert_eq!(
            arn,
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-5xx"
        );
        Box::pin(std::future::ready(self.0.clone()))
    }
}

/// The runbook link the posted notification carries, if any.
async fn runbook_posted(tags: Tags) -> Option<String> {
    let mut r = rig();
    r.notifier = r.notifier.clone().with_alarm_tags(Arc::new(tags));
    r.t.text(ADMIN, "alarms subscribe all").await;
    let out = r.notify(&change("api-5xx", "OK", "ALARM", r.t.now())).await;
    assert_eq!(out.posted, 1, "posted whatever the tags say");
    let blocks = serde_json::to_string(&r.posts.posts()[0].reply.blocks).unwrap();
    let start = blocks.find("<https://")?;
    let end = blocks[start..].find('|')?;
    Some(blocks[start + 1..start + end].to_string())
}

#[tokio::test]
async fn the_runbook_tag_comes_first_and_a_bad_one_is_ignored() {
    let tag = |v: &str| {
        Tags(Ok(vec![
            ("team".into(), "api".into()),
            ("runbook".into(), v.into()),
        ]))
    };
    // the tag, when it is an https link
    assert_eq!(
        runbook_posted(tag("https://runbooks.example.com/api-5xx"))
            .await
            .as_deref(),
        Some("https://runbooks.example.com/api-5xx")
    );
    // else the description's link (the documented event has one)
    let description = Some("https://wiki.example.com/runbooks/cpu");
    for bad in [
        "javascript:alert(1)",
        "http://plain.example.com",
        "<!channel>",
        "see the wiki",
    ] {
        assert_eq!(
            runbook_posted(tag(bad)).await.as_deref(),
            description,
            "{bad}"
        );
    }
    assert_eq!(
        runbook_posted(Tags(Ok(vec![]))).await.as_deref(),
        description
    );
    // and a failed lookup still posts, with the description's link
    assert_eq!(
        runbook_posted(Tags(Err("AccessDenied".into())))
            .await
            .as_deref(),
        description
    );
}

#[tokio::test]
async fn a_name_aws_allowed_is_quoted_into_its_buttons_never_spliced() {
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe all").await;
    let values = |i: usize| -> Vec<String> {
        r.posts.posts()[i]
            .reply
            .blocks
            .iter()
            .filter_map(|b| match b {
                opkit::slack::Block::Actions { buttons } => Some(buttons),
                _ => None,
            })
            .flatten()
            .map(|b| b.value.clone())
            .collect()
    };
    // GIVEN the finding's name (F9): a quote, spaces, and `for 7d` inside
    r.notify(&change("db-down\" for 7d \"", "OK", "ALARM", r.t.now()))
        .await;
    // THEN no button (no command can spell it), and says so
    assert!(values(0).is_empty(), "{:?}", values(0));
    assert!(
        format!("{:?}", r.posts.posts()[0].reply.blocks).contains("no command can"),
        "{:?}",
        r.posts.posts()[0].reply.blocks
    );
    // GIVEN a name a word can spell (a quote, no space) THEN its button mutes it
    r.notify(&change("a\"b", "OK", "ALARM", r.t.now())).await;
    assert_eq!(
        values(1)[2],
        "alarms mute a\"b in 123456789012 us-east-1 for 1h"
    );
    let message = r.posts.posts()[1].reply.clone();
    let muted = r.t.press(ADMIN, &message, "Mute 1h").await.text;
    assert!(
        muted
            .as_str()
            .contains("muted *a\"b* (account 123456789012, us-east-1) until"),
        "{muted}"
    );
    // GIVEN a name that reads as a keyword THEN it is a phrase, an argument
    r.notify(&change("for", "OK", "ALARM", r.t.now())).await;
    let message = r.posts.posts().last().unwrap().reply.clone();
    let acked = r.t.press("UBOB", &message, "Acknowledge").await.text;
    assert!(acked.as_str().contains("acknowledged *for*"), "{acked}");
}

#[tokio::test]
async fn a_change_dated_in_the_future_is_refused_and_kept_nowhere() {
    // GIVEN an alarm in ALARM, and the tester's event dated 9999 (forged, or a
    // skewed clock) for it
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe all").await;
    let now = r.t.now();
    r.notify(&change(
        "api-5xx",
        "OK",
        "ALARM",
        now - Duration::minutes(3),
    ))
    .await;
    let before: NotifyState = r.t.state(SCRIPT).await;
    let far = DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
        .unwrap()
        .with_timezone(&Utc);
    let posts = r.posts.posts().len();
    // WHEN it comes THEN nothing is posted and nothing kept
    let out = r.notify(&change("api-5xx", "ALARM", "OK", far)).await;
    assert_eq!(out.quiet, Some(incident::Why::FromTheFuture), "{out:?}");
    assert_eq!(r.posts.posts().len(), posts);
    let after: NotifyState = r.t.state(SCRIPT).await;
    assert_eq!(before, after, "stored nowhere");
    // AND just past the allowed skew is refused too; within it is taken
    let past_skew = now + incident::MAX_SKEW + Duration::seconds(1);
    let out = r.notify(&change("api-5xx", "ALARM", "OK", past_skew)).await;
    assert_eq!(out.quiet, Some(incident::Why::FromTheFuture));
    // AND the real recovery, a minute ago, is still posted
    let out = r
        .notify(&change(
            "api-5xx",
            "ALARM",
            "OK",
            now - Duration::minutes(1),
        ))
        .await;
    assert!(out.posted > 0, "{out:?}");
    // AND a change a little ahead (a clock a minute off) is news as usual
    let out = r
        .notify(&change(
            "db-down",
            "OK",
            "ALARM",
            now + Duration::minutes(1),
        ))
        .await;
    assert!(out.posted > 0, "{out:?}");
}

#[tokio::test]
async fn an_alarm_firing_again_soon_after_recovering_is_said_in_the_thread() {
    // GIVEN the tester's flap: ALARM, back to OK a minute later
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe all").await;
    let now = r.t.now();
    r.notify(&change("flap", "OK", "ALARM", now - Duration::minutes(3)))
        .await;
    r.notify(&change("flap", "ALARM", "OK", now - Duration::minutes(2)))
        .await;
    let thread_replies = |r: &Rig| {
        r.posts
            .posts()
            .into_iter()
            .filter(|p| p.thread_ts.is_some() && !p.updated)
            .collect::<Vec<_>>()
    };
    assert_eq!(thread_replies(&r).len(), 1, "back to OK");
    // WHEN it fires again a minute later (within the flap window)
    let out = r
        .notify(&change("flap", "OK", "ALARM", now - Duration::minutes(1)))
        .await;
    // THEN the thread says so: a reply, not only a redraw of the message
    assert_eq!(out.posted, 1, "{out:?}");
    let replies = thread_replies(&r);
    assert_eq!(replies.len(), 2, "{replies:#?}");
    assert!(
        format!("{:?}", replies[1].reply).contains("ALARM"),
        "{:?}",
        replies[1].reply
    );
    // AND it is the same incident, still open
    let state: NotifyState = r.t.state(SCRIPT).await;
    let incident = state
        .alarms
        .values()
        .next()
        .unwrap()
        .incident
        .clone()
        .unwrap();
    assert!(incident.ended_at.is_none());
    assert_eq!(incident.quiet, 0, "nothing held back");
}

#[tokio::test]
async fn a_mute_shorter_than_a_minute_is_refused_as_the_error_says() {
    let r = rig();
    r.t.text(ADMIN, "alarms subscribe all").await;
    r.notify(&change("api-5xx", "OK", "ALARM", r.t.now())).await;
    let before: NotifyState = r.t.state(SCRIPT).await;
    for typed in ["alarms mute api-5xx for 30s", "alarms mute api-5xx for 8d"] {
        let refused = r.t.text(ADMIN, typed).await;
        assert!(
            refused.contains("a mute lasts from 1m to 7d"),
            "{typed}: {refused}"
        );
    }
    let after: NotifyState = r.t.state(SCRIPT).await;
    assert_eq!(before, after, "nothing muted");
    let muted = r.t.text(ADMIN, "alarms mute api-5xx for 1m").await;
    assert!(muted.contains("muted *api-5xx*"), "{muted}");
}

#[tokio::test]
async fn an_instance_change_dated_in_the_future_is_refused_and_kept_nowhere() {
    // GIVEN a channel that hears of managed instances (the finding F19: an event a
    // day ahead was posted, kept, and every real change of the instance after
    // it was "not newer")
    let (r, _, _) = instances_rig().await;
    let before: NotifyState = r.t.state(SCRIPT).await;
    let now = r.t.now();
    // WHEN a change a day ahead comes, and one just past the allowed skew
    for ahead in [Duration::days(1), incident::MAX_SKEW + Duration::seconds(1)] {
        let out = r
            .notify(&instance_change("i-0aaa", "stopping", now + ahead))
            .await;
        // THEN nothing is posted and nothing kept
        assert_eq!(out.quiet, Some(incident::Why::FromTheFuture), "{ahead}");
    }
    assert!(r.posts.posts().is_empty());
    let after: NotifyState = r.t.state(SCRIPT).await;
    assert_eq!(before, after, "stored nowhere");
    // AND the instance's real change, now, is posted; one within the skew too
    let out = r.notify(&instance_change("i-0aaa", "stopped", now)).await;
    assert_eq!(out.posted, 1, "{out:?}");
    let soon = now + incident::MAX_SKEW;
    let out = r.notify(&instance_change("i-0aaa", "running", soon)).await;
    assert_eq!(out.posted, 1, "{out:?}");
}

#[tokio::test]
async fn two_instance_changes_in_one_second_are_both_news_and_a_repeat_is_not() {
    // GIVEN a channel that hears of managed instances
    let (r, _, _) = instances_rig().await;
    let at = r.t.now();
    // WHEN the instance enters stopping and stopped within one second (the
    // finding F5: EventBridge's time has one-second resolution, and the second
    // was dropped as "not newer")
    let stopping = instance_change("i-0aaa", "stopping", at);
    let stopped = instance_change("i-0aaa", "stopped", at);
    assert_eq!(r.notify(&stopping).await.posted, 1);
    // THEN both are posted, the channel's last word is "stopped"
    assert_eq!(r.notify(&stopped).await.posted, 1);
    let texts: Vec<String> = r
        .posts
        .posts()
        .iter()
        .map(|p| p.reply.text.to_string())
        .collect();
    assert!(texts[1].contains("i-0aaa is stopped"), "{texts:?}");
    // AND a repeat of either, or a change older than them, posts nothing, said of
    // an instance
    for event in [
        stopping,
        stopped,
        instance_change("i-0aaa", "running", at - Duration::seconds(1)),
    ] {
        let out = r.notify(&event).await;
        assert_eq!(out.quiet, Some(incident::Why::InstanceNotNewer), "{event}");
    }
    assert_eq!(r.posts.posts().len(), 2);
    assert_eq!(
        incident::Why::InstanceNotNewer.to_string(),
        "not newer than the last change seen of this instance (a repeat, or late)"
    );
    // AND a later change starts afresh
    let later = instance_change("i-0aaa", "pending", at + Duration::seconds(1));
    assert_eq!(r.notify(&later).await.posted, 1);
}

#[test]
fn an_instance_seen_stored_as_a_bare_time_still_reads() {
    let old = r#"{"instances": {"1/r/i-0aaa": "2026-11-30T05:41:01Z"}}"#;
    let state: NotifyState = serde_json::from_str(old).unwrap();
    let seen = &state.instances["1/r/i-0aaa"];
    assert!(seen.states.is_empty());
    assert!(!seen.is_news("stopped", seen.at - Duration::seconds(1)));
    assert!(seen.is_news("stopped", seen.at));
}

#[tokio::test]
async fn subscribing_to_every_alarm_reads_as_a_sentence_and_prefixes_keep_no_backtick() {
    let r = rig();
    // the tester's F15: "will hear when every alarm go into ALARM or OK"
    let all = r.t.text(ADMIN, "alarms subscribe all").await;
    assert!(
        all.ends_with("will hear when every alarm goes into ALARM or OK."),
        "{all}"
    );
    // and a prefix with a backtick kept it raw inside *…*
    let odd = r.t.text(ADMIN, "alarms subscribe a`b").await;
    assert!(odd.contains("alarms named *aˋb…* go into"), "{odd}");
}
