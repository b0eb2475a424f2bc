//! Tests of the ack path: signed requests in, answers and queued jobs out.

use super::*;
use serde_json::Value;

#[test]
fn routes_are_found_with_or_without_a_stage() {
    assert_eq!(Route::from_path("/slack/commands"), Some(Route::Commands));
    assert_eq!(Route::from_path("/prod/slack/events/"), Some(Route::Events));
    assert_eq!(
        Route::from_path("/slack/interactions"),
        Some(Route::Interactions)
    );
    assert_eq!(Route::from_path("/slack"), None);
    assert_eq!(Route::from_path("/healthz"), None);
}

use std::sync::Mutex;

use crate::BoxFuture;
use crate::clock::ManualClock;
use crate::job::{QueueError, Source};
use crate::slack::{SigningSecret, sign};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const NOW: i64 = 1_800_000_000;

/// Records what the ingress queues.
#[derive(Default)]
struct Recorded(Mutex<Vec<Job>>);

impl JobQueue for Recorded {
    fn enqueue<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), QueueError>> {
        self.0.lock().unwrap().push(job.clone());
        Box::pin(std::future::ready(Ok(())))
    }
}

fn ingress(team_ids: &str) -> (Ingress, Arc<Recorded>) {
    ingress_with(&[("OPKIT_TEAM_IDS", team_ids)])
}

fn ingress_with(vars: &[(&str, &str)]) -> (Ingress, Arc<Recorded>) {
    let queue = Arc::new(Recorded::default());
    let config = Config::from_lookup(|name| match name {
        "SLACK_SIGNING_SECRET" => Some(SECRET.to_owned()),
        _ => vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string()),
    })
    .unwrap();
    let clock = Arc::new(ManualClock::at_unix(NOW));
    (Ingress::new(&config, clock, queue.clone()).unwrap(), queue)
}

/// Payloads in the shapes Slack sends (tests/fixtures/slack/README.md).
const CONNECT_MENTION: &str = include_str!("../../tests/fixtures/slack/connect_mention.json");
const CONNECT_DM: &str = include_str!("../../tests/fixtures/slack/connect_dm.json");
const CONNECT_CLICK: &str = include_str!("../../tests/fixtures/slack/connect_click.json");
const GRID_MENTION: &str = include_str!("../../tests/fixtures/slack/grid_mention.json");
const GRID_DM: &str = include_str!("../../tests/fixtures/slack/grid_dm.json");
const GRID_COMMAND: &str = include_str!("../../tests/fixtures/slack/grid_command.form");

/// An interaction's JSON as the form Slack POSTs.
fn form_of(payload: &str) -> String {
    serde_urlencoded::to_string([("payload", payload)]).unwrap()
}

fn queued(queue: &Recorded) -> usize {
    queue.0.lock().unwrap().len()
}

/// Collects the log lines written while it is the thread's subscriber.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn click_form(team: &str, action_id: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": "U0001", "username": "al", "team_id": team},
        "team": {"id": team, "domain": "example"},
        "channel": {"id": "C0001", "name": "ops"},
        "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
        "trigger_id": "1.2.3",
        "actions": [{"action_id": action_id, "block_id": "b1", "type": "button",
                     "value": "p-1", "action_ts": "1795000001.000400"}]
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

async fn post(ingress: &Ingress, route: Route, body: &str) -> Answer {
    let signature = sign(&SigningSecret::new(SECRET), NOW, body.as_bytes());
    let timestamp = NOW.to_string();
    let request = SlackRequest {
        timestamp: Some(&timestamp),
        signature: Some(&signature),
        body: body.as_bytes(),
    };
    ingress.handle(route, request).await
}

#[test]
fn an_answer_becomes_http_in_one_place() {
    let cases = [
        (Answer::empty(), 200, "text/plain; charset=utf-8", ""),
        (
            Answer::json(json!({"challenge": "c"})),
            200,
            "application/json",
            r#"{"challenge":"c"}"#,
        ),
        (
            Answer::refuse(StatusCode::FORBIDDEN, "no"),
            403,
            "text/plain; charset=utf-8",
            "no",
        ),
    ];
    for (answer, status, content_type, body) in cases {
        let response = answer.into_http();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()[http::header::CONTENT_TYPE], content_type);
        assert_eq!(response.body(), body);
    }
}

#[tokio::test]
async fn a_signed_click_is_parsed_typed_and_queued() {
    // GIVEN a signed click on a confirm button
    let (ingress, queue) = ingress("");
    // WHEN it is posted to the interactions route
    let answer = post(
        &ingress,
        Route::Interactions,
        &click_form("T0001", "opkit:confirm"),
    )
    .await;
    // THEN it is acked with an empty 200 and one job is queued
    assert_eq!(answer, Answer::empty());
    let jobs = queue.0.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1);
    assert!(matches!(
        &jobs[0].source,
        Source::Interaction { pending_id, .. } if pending_id == "p-1"
    ));
    assert_eq!(jobs[0].caller.team.as_ref().unwrap().as_str(), "T0001");
}

#[tokio::test]
async fn clicks_that_are_not_opkits_or_not_clicks_are_refused() {
    let (ingress, queue) = ingress("");
    let unknown = post(&ingress, Route::Interactions, &click_form("T0001", "x:y")).await;
    assert_eq!(
        unknown,
        Answer::refuse(StatusCode::BAD_REQUEST, "unknown action `x:y`")
    );
    let shortcut = json!({"type": "shortcut", "user": {"id": "U0001"}});
    let body = serde_urlencoded::to_string([("payload", shortcut.to_string())]).unwrap();
    assert_eq!(
        post(&ingress, Route::Interactions, &body).await,
        Answer::refuse(
            StatusCode::BAD_REQUEST,
            "only button clicks (block_actions) are handled"
        )
    );
    let malformed = post(&ingress, Route::Interactions, "payload=%7B%7D").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(queue.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_team_not_allowed_is_refused_before_its_click_is_judged() {
    let (ingress, queue) = ingress("T0001");
    for action in ["opkit:confirm", "x:y"] {
        let answer = post(&ingress, Route::Interactions, &click_form("T0BAD", action)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{action}");
    }
    assert!(queue.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_member_of_another_organisation_is_not_answered_on_any_route() {
    // GIVEN the bot allowed for its workspace, and a Slack Connect user of
    // another organisation in a channel shared with it: the envelopes name
    // our workspace, the user's own team is theirs
    let (ingress, queue) = ingress("T0001");
    // WHEN they mention the bot, DM it, and click one of its buttons
    let mention = post(&ingress, Route::Events, CONNECT_MENTION).await;
    let dm = post(&ingress, Route::Events, CONNECT_DM).await;
    let click = post(&ingress, Route::Interactions, &form_of(CONNECT_CLICK)).await;
    // THEN the events are acked (200, so that Slack keeps the subscription) and
    // the click refused with the reason; nothing is queued
    assert_eq!(mention, Answer::empty());
    assert_eq!(dm, Answer::empty());
    assert_eq!(
        click,
        Answer::refuse(
            StatusCode::FORBIDDEN,
            "this bot answers only members of its own workspace; \
             you are from another organisation (T0EXT)"
        )
    );
    assert_eq!(queued(&queue), 0);
}

#[tokio::test]
async fn members_of_other_organisations_are_answered_when_allowed() {
    let (ingress, queue) = ingress_with(&[
        ("OPKIT_TEAM_IDS", "T0001"),
        ("OPKIT_ALLOW_EXTERNAL_USERS", "true"),
    ]);
    assert_eq!(
        post(&ingress, Route::Events, CONNECT_MENTION).await,
        Answer::empty()
    );
    assert_eq!(
        post(&ingress, Route::Events, CONNECT_DM).await,
        Answer::empty()
    );
    assert_eq!(
        post(&ingress, Route::Interactions, &form_of(CONNECT_CLICK)).await,
        Answer::empty()
    );
    assert_eq!(queued(&queue), 3);
}

#[tokio::test]
async fn with_any_workspace_allowed_another_organisations_users_are_still_refused() {
    let (ingress, queue) = ingress("any");
    post(&ingress, Route::Events, CONNECT_MENTION).await;
    let click = post(&ingress, Route::Interactions, &form_of(CONNECT_CLICK)).await;
    assert_eq!(click.status, StatusCode::FORBIDDEN);
    assert_eq!(queued(&queue), 0);
}

#[tokio::test]
async fn an_enterprise_grid_organisation_on_the_list_is_answered_on_every_route() {
    // GIVEN the bot allowed for an Enterprise Grid organisation, by its E… id
    let (grid, queue) = ingress("E0001");
    // WHEN one of its members runs a slash command, mentions the bot and DMs it
    let command = post(&grid, Route::Commands, GRID_COMMAND).await;
    let mention = post(&grid, Route::Events, GRID_MENTION).await;
    let dm = post(&grid, Route::Events, GRID_DM).await;
    // THEN all three are accepted and queued, as the same person on any route
    assert_eq!(command.status, StatusCode::OK);
    assert!(matches!(command.body, Body::Json(_)), "{command:?}");
    assert_eq!((mention, dm), (Answer::empty(), Answer::empty()));
    assert_eq!(queued(&queue), 3);
    // AND another organisation's workspace is not
    let (other, queue) = ingress("E0002");
    assert_eq!(
        post(&other, Route::Commands, GRID_COMMAND).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&other, Route::Events, GRID_MENTION).await,
        Answer::empty()
    );
    assert_eq!(queued(&queue), 0);
}

#[tokio::test]
async fn a_click_past_64_kib_is_taken_and_one_past_the_limit_is_not() {
    // GIVEN a click on a button in a long message (Slack sends the whole
    // message, and the form encoding of its JSON is larger still)
    let (ingress, queue) = ingress("T0001");
    let mut click: Value = serde_json::from_str(CONNECT_CLICK).unwrap();
    click["user"]["team_id"] = json!("T0001");
    let section = json!({"type": "section", "text": {"type": "mrkdwn",
        "text": "`i-0123` stopped → running; ".repeat(100)}});
    click["message"]["blocks"] = json!(vec![section; 40]);
    let body = form_of(&click.to_string());
    assert!(
        body.len() > 64 * 1024 && body.len() <= MAX_BODY,
        "{}",
        body.len()
    );
    // THEN it is queued
    assert_eq!(
        post(&ingress, Route::Interactions, &body).await,
        Answer::empty()
    );
    // AND a body past the limit is refused unread
    let huge = format!("{body}&pad={}", "x".repeat(MAX_BODY));
    let answer = post(&ingress, Route::Interactions, &huge).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(queued(&queue), 1);
}

#[tokio::test]
async fn a_refused_event_is_acked_with_200_logged_and_not_run() {
    // GIVEN an event from a workspace that is not on the list
    let logs = Logs::default();
    let _guard = logs.capture();
    let (ingress, queue) = ingress("T0002");
    // WHEN it arrives
    let answer = post(&ingress, Route::Events, GRID_MENTION).await;
    // THEN Slack gets a 200 (a non-200 would be retried, and many would turn the
    // subscription off), nothing is queued, and the log says why
    assert_eq!(answer, Answer::empty());
    assert_eq!(queued(&queue), 0);
    let logged = logs.text();
    assert!(
        logged.contains("refused an event")
            && logged.contains("Ev0GRID1")
            && logged.contains("workspace T0001 (E0001) is not allowed"),
        "{logged}"
    );
}

#[tokio::test]
async fn the_trusted_way_in_makes_the_same_decision_without_a_signature() {
    // GIVEN an ingress for Socket Mode, which has no signing secret
    let queue = Arc::new(Recorded::default());
    let config =
        Config::from_lookup(|name| (name == "OPKIT_TEAM_IDS").then(|| "T0001".to_owned())).unwrap();
    let ingress = Ingress::trusted(&config, Arc::new(ManualClock::at_unix(NOW)), queue.clone());
    // THEN HTTP requests are refused
    let request = SlackRequest {
        timestamp: None,
        signature: None,
        body: b"payload=%7B%7D",
    };
    assert_eq!(
        ingress.handle(Route::Interactions, request).await.status,
        StatusCode::UNAUTHORIZED
    );
    // AND parsed payloads are decided as over HTTP: the team check, then the job
    let click = |team: &str| Interaction::parse(click_form(team, "opkit:deny").as_bytes()).unwrap();
    let refused = ingress.accept(Inbound::Interaction(click("T0BAD"))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let accepted = ingress.accept(Inbound::Interaction(click("T0001"))).await;
    assert_eq!(accepted, Answer::empty());
    assert_eq!(queue.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_ack_quotes_the_command_on_one_line() {
    // A sibling of the forged-audit-line defect: the ack echoed the raw text.
    let (ingress, _) = ingress("T0001");
    let cmd = crate::slack::SlashCommand::from_json(serde_json::json!({
        "token": "t", "team_id": "T0001", "team_domain": "x", "channel_id": "C1",
        "channel_name": "ops", "user_id": "U1", "user_name": "al", "command": "/opkit",
        "text": "whoami\n• `forged` line", "response_url": "https://hooks.slack.com/commands/1",
        "trigger_id": "1.2.3"
    }))
    .unwrap();
    let answer = ingress.accept(Inbound::Command(cmd)).await;
    let Body::Json(json) = answer.body else {
        panic!("{answer:?}")
    };
    assert_eq!(json["text"], "Working on `whoami⏎• ˋforgedˋ line`…");
}
