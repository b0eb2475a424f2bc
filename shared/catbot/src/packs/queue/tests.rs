//! Tests of the queue pack, driven as users drive it.

use super::*;

#[tokio::test]
async fn a_dotted_name_slack_sent_as_a_link_is_the_environment() {
    let t = TestBot::with(|b| b.script(script()));
    let reply = t
        .text(
            "UA",
            "queue join <http://staging.example.com|staging.example.com>",
        )
        .await;
    assert_eq!(
        reply,
        "<@UA> holds *staging.example.com* now until you leave."
    );
}

#[tokio::test]
async fn one_user_cannot_fill_the_shared_state() {
    // the defect: one user's 2,400 joins grew the state past DynamoDB's item
    // limit and broke `queue join` for everyone
    let t = TestBot::with(|b| b.script(script()));
    for n in 0..MAX_PER_USER {
        let reply = t.text("UHOG", &format!("queue join env-{n}")).await;
        assert!(reply.contains("holds *env-"), "{reply}");
    }
    let refused = t.text("UHOG", "queue join env-999").await;
    assert!(
        refused.starts_with("You already hold or wait for 20 environments"),
        "{refused}"
    );
    let state: QueueState = t.state("queue").await;
    assert_eq!(state.envs.len(), MAX_PER_USER, "nothing was added");
    // everyone else is unaffected
    let second = t.text("UB", "queue join env-0").await;
    assert!(second.contains("2nd in line"), "{second}");
    assert!(
        t.text("UB", "queue join perf")
            .await
            .contains("holds *perf*")
    );
}

#[tokio::test]
async fn the_number_of_environments_and_places_is_bounded() {
    let t = TestBot::with(|b| b.script(script()));
    let mut users = (0..).map(|i| format!("U{i:05}"));
    let mut joined = 0;
    'fill: for _ in 0..(MAX_ENVS / MAX_PER_USER) {
        let user = users.next().unwrap();
        for _ in 0..MAX_PER_USER {
            let reply = t.text(&user, &format!("queue join env-{joined}")).await;
            if !reply.contains("holds") {
                break 'fill;
            }
            joined += 1;
        }
    }
    assert_eq!(joined, MAX_ENVS);
    let refused = t.text("UNEW", "queue join one-more").await;
    assert!(
        refused.starts_with("There are already 200 environments"),
        "{refused}"
    );
    assert!(
        t.text("UNEW", "queue join env-3").await.contains("in line"),
        "existing lines still take people"
    );
    // places in all: fill existing lines until the bound
    let mut places = MAX_ENVS + 1;
    'more: loop {
        let user = users.next().unwrap();
        for env in 0..MAX_PER_USER {
            if places == MAX_ENTRIES {
                break 'more;
            }
            let reply = t.text(&user, &format!("queue join env-{env}")).await;
            assert!(reply.contains("in line"), "{reply}");
            places += 1;
        }
    }
    let refused = t.text("ULAST", "queue join env-7").await;
    assert!(
        refused.starts_with("The lines hold 1000 places"),
        "{refused}"
    );
    let bytes = serde_json::to_string(&t.state::<QueueState>("queue").await)
        .unwrap()
        .len();
    assert!(
        bytes < opkit::store::MAX_STATE_BYTES / 2,
        "{bytes} bytes at the bound"
    );
}
use opkit::testing::TestBot;

#[tokio::test]
async fn first_in_line_holds_and_the_next_is_named_on_leave() {
    let t = TestBot::with(|b| b.script(script()));
    let reply = t.say("UA", "queue join perf").await;
    assert_eq!(reply.text, "<@UA> holds *perf* now until you leave.");
    assert_eq!(reply.visibility, opkit::slack::Visibility::InChannel);
    assert_eq!(
        t.text("UB", "queue join PERF").await,
        "<@UB> is 2nd in line for *perf*, after <@UA>."
    );
    t.say("UC", "queue join perf").await;
    assert_eq!(
        t.text("UB", "queue status perf").await,
        "*perf*: <@UA> holds it; next: <@UB>, <@UC>"
    );
    assert_eq!(
        t.text("UA", "queue leave perf").await,
        "<@UA> gave up *perf*; <@UB> is up now."
    );
    assert_eq!(
        t.text("UC", "queue leave perf").await,
        "<@UC> left the line for *perf*."
    );
    assert_eq!(
        t.text("UB", "queue leave perf").await,
        "<@UB> gave up *perf*; it is free."
    );
    assert_eq!(t.text("UB", "queue").await, "No environment is reserved.");
}

#[tokio::test]
async fn a_limited_hold_ends_on_time_and_the_next_is_up() {
    let t = TestBot::with(|b| b.script(script()));
    assert_eq!(
        t.text("UA", "queue join perf for 2h").await,
        "<@UA> holds *perf* now for 2h."
    );
    t.say("UB", "queue join perf for 30m").await;
    t.advance(Duration::minutes(90));
    let status = t.text("UC", "queue status").await;
    assert_eq!(
        status,
        "*perf*: <@UA> holds it until <!date^1800007200^{date_short_pretty} at {time}|2027-01-15 10:00 UTC> (30m left); next: <@UB>"
    );
    // WHEN A's two hours and then B's thirty minutes have passed
    t.advance(Duration::minutes(45));
    assert_eq!(
        t.text("UC", "queue status perf").await,
        "<@UA>'s time on *perf* is up; <@UB> is up now.\n*perf*: <@UB> holds it until <!date^1800009000^{date_short_pretty} at {time}|2027-01-15 10:30 UTC> (15m left)"
    );
    t.advance(Duration::minutes(15));
    assert_eq!(
        t.text("UC", "queue join perf").await,
        "<@UB>'s time on *perf* is up; perf is free.\n<@UC> holds *perf* now until you leave."
    );
}

#[tokio::test]
async fn mistakes_get_clear_answers_and_change_nothing() {
    let t = TestBot::with(|b| b.script(script()));
    t.say("UA", "queue join perf").await;
    assert_eq!(
        t.text("UA", "queue join perf").await,
        "You are already first in line for *perf*."
    );
    assert_eq!(
        t.text("UB", "queue leave perf").await,
        "You are not in line for *perf*."
    );
    assert_eq!(
        t.text("UB", "queue leave staging").await,
        "Nobody is in line for *staging*."
    );
    assert_eq!(
        t.text("UB", "queue join").await,
        "missing an environment. Usage: `queue join &lt;env&gt; [for &lt;duration&gt;]`"
    );
    assert!(
        t.text("UB", "queue join a/b")
            .await
            .starts_with("`a/b` is not an environment name")
    );
    assert!(
        t.text("UB", "queue join \"perf\n• `x`\"")
            .await
            .starts_with("`perf⏎• ˋxˋ` is not an environment name"),
        "what was typed is quoted on one line"
    );
    assert!(
        t.text("UB", "queue join perf for 0m")
            .await
            .starts_with("a duration must be longer")
    );
    assert_eq!(t.text("UB", "queue status").await, "*perf*: <@UA> holds it");
}

#[test]
fn settle_hands_over_in_a_chain_and_reports_each_step() {
    let t0 = DateTime::from_timestamp(0, 0).unwrap();
    let entry = |u: &str, mins: i64| Entry {
        user: UserId::parse(u).unwrap(),
        joined_at: t0,
        limit_secs: Some(mins * 60),
        holding_since: None,
        channel: None,
    };
    let mut state = QueueState::default();
    state.envs.insert(
        "perf".into(),
        vec![entry("UA", 10), entry("UB", 10), entry("UC", 60)],
    );
    assert!(settle(&mut state, t0).is_empty());
    assert_eq!(next_deadline(&state), Some(t0 + Duration::minutes(10)));
    let handovers = settle(&mut state, t0 + Duration::minutes(25));
    let told: Vec<String> = handovers
        .iter()
        .map(|h| h.describe().into_string())
        .collect();
    assert_eq!(
        told,
        [
            "<@UA>'s time on *perf* is up; <@UB> is up now.",
            "<@UB>'s time on *perf* is up; <@UC> is up now."
        ]
    );
    assert_eq!(
        state.envs["perf"][0].holding_since,
        Some(t0 + Duration::minutes(20))
    );
}

#[tokio::test]
async fn the_ticker_ends_holds_on_time_and_announces_them_where_they_began() {
    use opkit::store::{AuditLog, StateStore};
    let t = TestBot::with(|b| b.script(script()));
    t.say("UA", "queue join perf for 1h").await;
    t.say("UB", "queue join perf").await;
    // nothing is due yet: no notice, no write
    assert!(t.bot.tick().await.unwrap().is_empty());
    assert_eq!(t.store.load("queue").await.unwrap().version, 2);
    // WHEN the hour is up and the scheduled pass runs (nobody typed anything)
    t.advance(Duration::hours(1));
    let notices = t.bot.tick().await.unwrap();
    // THEN A's hold ends, B is named, in the channel A joined from, and it is audited
    assert_eq!(notices.len(), 1);
    assert_eq!(
        notices[0].text,
        "<@UA>'s time on *perf* is up; <@UB> is up now."
    );
    assert_eq!(
        notices[0].channel.as_ref().map(|c| c.as_str()),
        Some("C0PS")
    );
    let audit = t.store.recent(None, 1).await.unwrap();
    assert_eq!(audit[0].outcome.name(), "system");
    assert_eq!(audit[0].user.as_str(), "UA");
    assert_eq!(t.text("UC", "queue status").await, "*perf*: <@UB> holds it");
    // AND a second pass has nothing more to say
    assert!(t.bot.tick().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_ops_user_can_end_someone_elses_hold_after_confirming() {
    let t = TestBot::with(|b| b.script(script()));
    t.say("UA", "queue join perf").await;
    t.say("UB", "queue join perf").await;
    assert_eq!(
        t.text("UB", "queue kick perf <@UA>").await,
        "Sorry, you need admin, or ops to run `queue kick`."
    );
    let prompt = t.say("UADMIN", "queue kick perf <@UA>").await;
    assert_eq!(
        t.text("UC", "queue status perf").await,
        "*perf*: <@UA> holds it; next: <@UB>"
    );
    let done = t
        .click("UADMIN", &prompt, opkit::engine::gate::Decision::Confirm)
        .await;
    assert!(
        done.text
            .ends_with("<@UA> gave up *perf*; <@UB> is up now. (ended by <@UADMIN>)"),
        "{}",
        done.text
    );
}

#[tokio::test]
async fn kick_asks_only_when_someone_would_leave_the_line() {
    // GIVEN UA holds perf, UB waits
    let t = TestBot::with(|b| b.script(script()));
    t.say("UA", "queue join perf").await;
    t.say("UB", "queue join perf").await;
    // WHEN the kick is of someone not in line, of a line nobody is in, or malformed
    for (typed, answer) in [
        ("queue kick perf <@UZ>", "<@UZ> is not in line for *perf*."),
        (
            "queue kick staging <@UA>",
            "Nobody is in line for *staging*.",
        ),
        (
            "queue kick perf",
            "give an environment and a user. Usage: `queue kick &lt;env&gt; &lt;@user&gt;`",
        ),
    ] {
        // THEN it is told at once, with nothing to click and nothing held
        assert_eq!(t.answered_at_once("UADMIN", typed).await, answer, "{typed}");
    }
    // AND a kick that would do something says what, and changes nothing yet
    let prompt = t.say("UADMIN", "queue kick perf <@UA>").await;
    assert!(
        prompt
            .text
            .contains("\nIt would go like this: <@UA> gave up *perf*; <@UB> is up now.\n"),
        "{}",
        prompt.text
    );
    assert_eq!(
        t.text("UC", "queue status perf").await,
        "*perf*: <@UA> holds it; next: <@UB>"
    );
}

#[tokio::test]
async fn state_is_saved_only_when_changed() {
    use opkit::store::StateStore;
    let t = TestBot::with(|b| b.script(script()));
    t.say("UA", "queue status").await;
    assert_eq!(t.store.load("queue").await.unwrap().version, 0);
    t.say("UA", "queue join perf").await;
    t.say("UA", "queue status").await;
    assert_eq!(t.store.load("queue").await.unwrap().version, 1);
}

#[tokio::test]
async fn kick_takes_a_mention_not_a_name_typed_as_text() {
    // the defect's kind: a name typed as text became a user id nobody has
    let t = TestBot::with(|b| b.script(script()));
    t.text("UA", "queue join perf").await;
    for typed in ["queue kick perf bob", "queue kick perf @BOB"] {
        // (refused before any confirmation is asked for)
        let reply = t.answered_at_once("UADMIN", typed).await;
        assert!(
            reply.contains("expected a user: mention them like @name"),
            "{typed}: {reply}"
        );
    }
}

#[tokio::test]
async fn a_confirmed_kick_acts_only_on_the_place_its_prompt_showed() {
    // GIVEN UA holds perf, UB waits, and a kick of UA is asked
    let t = TestBot::with(|b| b.script(script()));
    t.say("UA", "queue join perf").await;
    t.say("UB", "queue join perf").await;
    let prompt = t.say("UADMIN", "queue kick perf <@UA>").await;
    // WHEN UA leaves and joins again before the click (now waiting behind UB; F11)
    t.say("UA", "queue leave perf").await;
    t.say("UA", "queue join perf").await;
    let done = t
        .click("UADMIN", &prompt, opkit::engine::gate::Decision::Confirm)
        .await;
    // THEN nothing happens, and the click says what changed
    assert!(
        done.text.as_str().contains(
            "Their place in the line changed since this request was asked: it was holding \
             it, with UB next, it is now number 2 in line. Nothing was run"
        ),
        "{}",
        done.text
    );
    assert_eq!(
        t.text("UC", "queue status perf").await,
        "*perf*: <@UB> holds it; next: <@UA>"
    );
}
