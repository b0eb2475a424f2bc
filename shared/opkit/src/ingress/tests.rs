//! Tests of the ack path: signed requests in, answers and queued jobs out.

use super::*;
use crate::engine::bot::MAX_TEXT_LEN;
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
pub(super) struct Recorded(Mutex<Vec<Job>>);

impl JobQueue for Recorded {
    fn enqueue<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), QueueError>> {
        self.0.lock().unwrap().push(job.clone());
        Box::pin(std::future::ready(Ok(())))
    }
}

pub(super) fn ingress(team_ids: &str) -> (Ingress, Arc<Recorded>) {
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
pub(super) fn form_of(payload: &str) -> String {
    serde_urlencoded::to_string([("payload", payload)]).unwrap()
}

pub(super) fn queued(queue: &Recorded) -> usize {
    queue.0.lock().unwrap().len()
}

/// Collects the log lines written while it is the thread's subscriber.
#[derive(Clone, Default)]
pub(super) struct Logs(Arc<Mutex<Vec<u8>>>);

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
    pub(super) fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(self.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub(super) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

pub(super) fn click_json(team: &str, action_id: &str) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": "U0001", "username": "al", "team_id": team},
        "team": {"id": team, "domain": "example"},
        "channel": {"id": "C0001", "name": "ops"},
        "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
        "trigger_id": "1.2.3",
        "actions": [{"action_id": action_id, "block_id": "b1", "type": "button",
                     "value": "p-1", "action_ts": "1795000001.000400"}]
    })
}

fn click_form(team: &str, action_id: &str) -> String {
    form_of(&click_json(team, action_id).to_string())
}

/// The text of an ephemeral 200 answer; panics on anything else.
fn ephemeral(answer: &Answer) -> String {
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let Some(json) = answer.body.json() else {
        panic!("not JSON: {answer:?}");
    };
    assert!(matches!(answer.body, Body::Message(_)), "{answer:?}");
    assert_eq!(json["response_type"], "ephemeral", "{json}");
    json["text"].as_str().unwrap().to_owned()
}

pub(super) async fn post(ingress: &Ingress, route: Route, body: &str) -> Answer {
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
async fn a_malformed_click_on_an_opkit_button_is_refused() {
    let (ingress, queue) = ingress("");
    let malformed = post(&ingress, Route::Interactions, "payload=%7B%7D").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let mut no_url = click_json("T0001", "opkit:confirm");
    no_url.as_object_mut().unwrap().remove("response_url");
    let answer = post(&ingress, Route::Interactions, &form_of(&no_url.to_string())).await;
    assert_eq!(
        answer,
        Answer::refuse(
            StatusCode::BAD_REQUEST,
            "the interaction has no response_url"
        )
    );
    assert_eq!(queued(&queue), 0);
}

#[tokio::test]
async fn a_team_not_allowed_is_told_why_on_its_click_and_another_apps_click_is_only_acked() {
    let (ingress, queue) = ingress("T0001");
    // GIVEN a workspace not on the list clicking one of Opkit's buttons
    let answer = post(
        &ingress,
        Route::Interactions,
        &click_form("T0BAD", "opkit:confirm"),
    )
    .await;
    // THEN it gets a 200 saying why, and nothing runs
    assert_eq!(
        ephemeral(&answer),
        "Sorry, I cannot run that: workspace T0BAD is not allowed to use this bot"
    );
    // AND a click on another app's element is acked without a word
    let other = post(&ingress, Route::Interactions, &click_form("T0BAD", "x:y")).await;
    assert_eq!(other, Answer::empty());
    assert_eq!(queued(&queue), 0);
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
        ephemeral(&click),
        "Sorry, I cannot run that: this bot answers only members of its own workspace; \
         you are from another organisation (T0EXT)"
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
    assert!(
        ephemeral(&click).contains("another organisation"),
        "{click:?}"
    );
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
    assert!(matches!(command.body, Body::Message(_)), "{command:?}");
    assert_eq!((mention, dm), (Answer::empty(), Answer::empty()));
    assert_eq!(queued(&queue), 3);
    // AND another organisation's workspace is not
    let (other, queue) = ingress("E0002");
    assert!(ephemeral(&post(&other, Route::Commands, GRID_COMMAND).await).contains("not allowed"));
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
        body.len() > 64 * 1024 && body.len() <= Route::Interactions.max_body(),
        "{}",
        body.len()
    );
    // THEN it is queued
    assert_eq!(
        post(&ingress, Route::Interactions, &body).await,
        Answer::empty()
    );
    // AND a body past the limit is refused unread
    let huge = format!("{body}&pad={}", "x".repeat(Route::Interactions.max_body()));
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
    assert!(ephemeral(&refused).contains("not allowed"), "{refused:?}");
    let accepted = ingress.accept(Inbound::Interaction(click("T0001"))).await;
    assert_eq!(accepted, Answer::empty());
    assert_eq!(queue.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_ack_quotes_the_command_on_one_line() {
    // A sibling of the forged-audit-line defect: the ack echoed the raw text.
    let (ingress, _) = ingress("T0001");
    let cmd = command_json("whoami\n• `forged` line");
    let answer = ingress.accept(Inbound::Command(cmd)).await;
    let json = answer.body.json().unwrap();
    assert_eq!(json["text"], "Working on `whoami • ˋforgedˋ line`…");
}

#[tokio::test]
async fn a_long_command_is_named_in_its_ack_not_quoted() {
    // GIVEN a command of 4,000 characters (the most the bot runs)
    let (ingress, queue) = ingress("T0001");
    let long = format!("weather {}", "x".repeat(MAX_TEXT_LEN - 8));
    let answer = ingress.accept(Inbound::Command(command_json(&long))).await;
    // THEN it is queued, and its ack fits a Slack message and quotes none of it
    assert_eq!(queue.0.lock().unwrap().len(), 1);
    assert_eq!(ephemeral(&answer), "Working on your command…");
    // AND one just short enough is quoted whole
    let short = format!("weather {}", "y".repeat(crate::text::ONE_LINE_MAX - 8));
    let answer = ingress.accept(Inbound::Command(command_json(&short))).await;
    assert_eq!(ephemeral(&answer), format!("Working on `{short}`…"));
}

#[test]
fn a_long_message_in_an_ack_is_fitted_like_every_message() {
    // GIVEN an ack carrying a reply far past Slack's limits (a refusal is one)
    let lines: Vec<String> = (0..400)
        .map(|i| format!("line {i:03} {}", "z".repeat(40)))
        .collect();
    let reply = crate::slack::Reply::text(crate::slack::UserText::new(lines.join("\n")));
    // WHEN it becomes HTTP
    let response = Answer::message(reply).into_http();
    let json: serde_json::Value = serde_json::from_str(response.body()).unwrap();
    // THEN it went through Reply::message_fields: text within 4,000, the whole
    // answer in sections of at most 3,000, still ephemeral and not replacing
    assert_eq!(json["response_type"], "ephemeral");
    assert_eq!(json["replace_original"], false);
    assert!(json["text"].as_str().unwrap().chars().count() <= crate::slack::reply::TEXT_MAX);
    let sections: Vec<&str> = json["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["text"]["text"].as_str().unwrap())
        .collect();
    assert!(sections.len() > 1, "{json}");
    assert!(
        sections
            .iter()
            .all(|s| s.chars().count() <= crate::slack::reply::SECTION_TEXT_MAX)
    );
    assert_eq!(sections.join("\n"), lines.join("\n"));
}

/// Payloads Slack really sends that Opkit has no part in
/// (tests/fixtures/slack/README.md).
const NOT_OURS: [(&str, &str); 7] = [
    (
        "shortcut",
        include_str!("../../tests/fixtures/slack/shortcut.json"),
    ),
    (
        "message_action",
        include_str!("../../tests/fixtures/slack/message_action.json"),
    ),
    (
        "view_submission",
        include_str!("../../tests/fixtures/slack/view_submission.json"),
    ),
    (
        "view_closed",
        include_str!("../../tests/fixtures/slack/view_closed.json"),
    ),
    (
        "block_suggestion",
        include_str!("../../tests/fixtures/slack/block_suggestion.json"),
    ),
    (
        "block_actions `set_priority`",
        include_str!("../../tests/fixtures/slack/block_actions_other_app.json"),
    ),
    (
        "block_actions `opkit:snooze`",
        include_str!("../../tests/fixtures/slack/block_actions_stale.json"),
    ),
];

#[tokio::test]
async fn every_interaction_opkit_has_no_part_in_gets_an_empty_200_and_runs_nothing() {
    for allowed in ["T0001", "T0BAD"] {
        // GIVEN the bot (for its own workspace, or for another)
        let logs = Logs::default();
        let _guard = logs.capture();
        let (ingress, queue) = ingress(allowed);
        for (kind, payload) in NOT_OURS {
            // WHEN Slack posts an interaction that is not a click on Opkit's buttons
            let answer = post(&ingress, Route::Interactions, &form_of(payload)).await;
            // THEN it is acked with an empty 200, and the debug log names it
            assert_eq!(answer, Answer::empty(), "{kind} ({allowed})");
            assert!(
                logs.text().contains(&format!("kind=\"{kind}\"")) || logs.text().contains(kind),
                "{kind}: {}",
                logs.text()
            );
        }
        // AND nothing was queued
        assert_eq!(queued(&queue), 0, "{allowed}");
    }
}

/// Events without a workspace, or that end the app's access.
const APP_EVENTS: [(&str, &str, bool); 4] = [
    (
        "app_uninstalled",
        include_str!("../../tests/fixtures/slack/app_uninstalled.json"),
        true,
    ),
    (
        "tokens_revoked",
        include_str!("../../tests/fixtures/slack/tokens_revoked.json"),
        true,
    ),
    (
        "team_access_granted",
        include_str!("../../tests/fixtures/slack/team_access_granted.json"),
        false,
    ),
    (
        "app_uninstalled",
        include_str!("../../tests/fixtures/slack/grid_app_uninstalled.json"),
        true,
    ),
];

#[tokio::test]
async fn organisation_level_and_uninstall_events_are_acked_and_run_nothing() {
    for allowed in ["T0001,E0001", "T0BAD"] {
        let (ingress, queue) = ingress(allowed);
        for (kind, body, warns) in APP_EVENTS {
            // GIVEN an event Slack sends about the app itself, some without `team_id`
            let logs = Logs::default();
            let _guard = logs.capture();
            // WHEN it arrives
            let answer = post(&ingress, Route::Events, body).await;
            // THEN it gets an empty 200 and nothing runs
            assert_eq!(answer, Answer::empty(), "{kind} ({allowed})");
            // AND an uninstall or a revocation is in the log at warn, for operators
            let logged = logs.text();
            let warned = logged
                .lines()
                .any(|line| line.contains("WARN") && line.contains(kind));
            if allowed == "T0001,E0001" {
                assert_eq!(warned, warns, "{kind}: {logged}");
            }
        }
        assert_eq!(queued(&queue), 0, "{allowed}");
    }
}

#[test]
fn organisation_level_events_parse_without_a_workspace() {
    let body = APP_EVENTS[2].1;
    let Ok(EventRequest::EventCallback(callback)) = EventRequest::parse(body.as_bytes()) else {
        panic!("team_access_granted does not parse");
    };
    assert_eq!(callback.team_id, None);
    assert_eq!(callback.origin().installation.to_string(), "E0001");
    assert!(!callback.ends_access());
}

const SSL_CHECK: &str = include_str!("../../tests/fixtures/slack/ssl_check.form");

#[tokio::test]
async fn slacks_unsigned_ssl_check_gets_an_empty_200_and_nothing_else_passes_unsigned() {
    let (ingress, queue) = ingress("T0001");
    let unsigned = |body: &'static str| SlackRequest {
        timestamp: None,
        signature: None,
        body: body.as_bytes(),
    };
    // GIVEN Slack's SSL check, unsigned as Slack sends it
    // THEN the commands route answers it with an empty 200
    assert_eq!(
        ingress.handle(Route::Commands, unsigned(SSL_CHECK)).await,
        Answer::empty()
    );
    // AND it opens no other door: on another route, or with a field more, it
    // must be signed
    assert_eq!(
        ingress
            .handle(Route::Events, unsigned(SSL_CHECK))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let command = "ssl_check=1&token=x&team_id=T0001&team_domain=x&channel_id=C1&channel_name=ops\
                   &user_id=U1&user_name=al&command=%2Fopkit&text=whoami\
                   &response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1&trigger_id=1.2.3";
    for body in [command, "ssl_check=1&token=x&text=whoami", "ssl_check=1"] {
        assert_eq!(
            ingress.handle(Route::Commands, unsigned(body)).await.status,
            StatusCode::UNAUTHORIZED,
            "{body}"
        );
    }
    assert_eq!(queued(&queue), 0);
}

#[tokio::test]
async fn each_route_takes_bodies_up_to_its_own_limit_and_no_more() {
    let (ingress, _) = ingress("T0001");
    let limits = [
        (Route::Commands, COMMANDS_MAX_BODY),
        (Route::Events, EVENTS_MAX_BODY),
        (Route::Interactions, INTERACTIONS_MAX_BODY),
    ];
    for (route, limit) in limits {
        assert_eq!(route.max_body(), limit);
        assert!(limit <= Route::largest_body());
        // A body of exactly the limit is read (and, unsigned, refused for that)...
        let at = vec![b'a'; limit];
        let request = SlackRequest {
            timestamp: None,
            signature: None,
            body: &at,
        };
        assert_eq!(
            ingress.handle(route, request).await.status,
            StatusCode::UNAUTHORIZED,
            "{route:?}"
        );
        // ...one byte more is refused unread
        let over = vec![b'a'; limit + 1];
        let request = SlackRequest {
            timestamp: None,
            signature: None,
            body: &over,
        };
        assert_eq!(
            ingress.handle(route, request).await.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{route:?}"
        );
    }
    assert_eq!(Route::largest_body(), INTERACTIONS_MAX_BODY);
}

fn command_json(text: &str) -> crate::slack::SlashCommand {
    crate::slack::SlashCommand::from_json(json!({
        "token": "t", "team_id": "T0001", "team_domain": "x", "channel_id": "C1",
        "channel_name": "ops", "user_id": "U1", "user_name": "al", "command": "/opkit",
        "text": text, "response_url": "https://hooks.slack.com/commands/T0001/1/abc",
        "trigger_id": "1.2.3"
    }))
    .unwrap()
}

#[tokio::test]
async fn the_largest_job_the_ingress_queues_fits_in_one_sqs_message() {
    // GIVEN a command of the longest text Slack sends, of the characters that
    // grow most in the job's JSON (control characters: six bytes each)
    let (ingress, queue) = ingress("T0001");
    let longest = "\u{1}".repeat(MAX_TEXT_LEN);
    let answer = ingress
        .accept(Inbound::Command(command_json(&longest)))
        .await;
    assert!(ephemeral(&answer).starts_with("Working"), "{answer:?}");
    // THEN its sealed job is within SQS's message size as it was before August
    // 2025 (256 KiB), let alone today's 1 MiB
    let job = queue.0.lock().unwrap()[0].clone();
    let sealed = job.encode(&crate::job::EnvelopeKey::random());
    assert!(sealed.len() <= 256 * 1024, "{} bytes", sealed.len());
    // AND one character more is refused with a clear answer, nothing queued
    let answer = ingress
        .accept(Inbound::Command(command_json(&format!("{longest}x"))))
        .await;
    assert_eq!(
        ephemeral(&answer),
        "That is too long for a command (4001 characters; the most is 4000)."
    );
    assert_eq!(queued(&queue), 1);
}

#[tokio::test]
async fn a_command_is_measured_in_characters_and_refused_at_the_ack_as_the_bot_would() {
    // GIVEN `weather` and 2,100 `é` (4,208 bytes, 2,108 characters)
    let (ingress, queue) = ingress("T0001");
    let accented = format!("weather {}", "é".repeat(2_100));
    assert!(accented.len() > MAX_TEXT_LEN);
    // THEN it is queued: it is well under 4,000 characters
    let answer = ingress
        .accept(Inbound::Command(command_json(&accented)))
        .await;
    assert!(ephemeral(&answer).starts_with("Working"), "{answer:?}");
    assert!(crate::engine::bot::command_too_long(&accented).is_none());
    // AND one of 4,001 characters is refused at once, with the bot's own words
    // and the count in characters, not bytes
    let over = "é".repeat(MAX_TEXT_LEN + 1);
    let answer = ingress.accept(Inbound::Command(command_json(&over))).await;
    let refusal = crate::engine::bot::command_too_long(&over).unwrap();
    assert_eq!(ephemeral(&answer), refusal.as_str());
    assert_eq!(
        refusal.as_str(),
        "That is too long for a command (4001 characters; the most is 4000)."
    );
    assert_eq!(queued(&queue), 1);
}

#[test]
fn text_length_is_counted_in_characters() {
    assert!(text_fits(&"é".repeat(MAX_TEXT_CHARS)));
    assert!(!text_fits(&"é".repeat(MAX_TEXT_CHARS + 1)));
    assert!(text_fits(""));
}
