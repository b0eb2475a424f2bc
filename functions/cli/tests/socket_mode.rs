//! `opkit serve --socket-mode` end to end: the real binary, a fake Socket Mode
//! server (a WebSocket server on a loopback port that speaks Slack's envelope
//! protocol), and the fake Slack for `apps.connections.open`, `response_url`s and
//! the Web API. Nothing sleeps: every wait is for an event, with a timeout as the
//! upper bound.

mod socket_harness;

use futures_util::SinkExt;
use opkit_tests::{CannedResponse, FakeSlack};
use serde_json::{Value, json};
use socket_harness::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_slash_command_is_acked_on_the_socket_and_answered_at_the_response_url() {
    let Connected {
        slack,
        mut connection,
        bot: _bot,
        ..
    } = connected().await;

    // The connection was opened with the app-level token, on the URL Slack gave.
    let opens = slack.posts_to(OPEN);
    assert_eq!(opens.len(), 1);
    assert_eq!(opens[0].header("authorization"), Some("Bearer xapp-test"));
    assert_eq!(connection.path, "/link/1");

    join_queue(&slack, &mut connection, "env-1", "perf", 2).await;
}

#[tokio::test]
async fn a_mention_is_acked_and_answered_in_its_thread() {
    let Connected {
        slack,
        mut connection,
        bot: _bot,
        ..
    } = connected().await;

    connection
        .send(mention_envelope("env-2", "U1", "queue join perf"))
        .await;

    assert_eq!(connection.receive().await, json!({"envelope_id": "env-2"}));
    let requests = slack.wait_for(2, WAIT).await;
    let post = &requests[1];
    assert_eq!(post.path, "/api/chat.postMessage");
    assert_eq!(post.header("authorization"), Some("Bearer xoxb-test"));
    let body = post.json();
    assert_eq!(body["channel"], "C0001");
    assert_eq!(body["thread_ts"], "1795000000.000100");
    assert_eq!(body["text"], "<@U1> holds *perf* now until you leave.");
}

#[tokio::test]
async fn an_event_slack_sends_again_runs_its_command_once() {
    // GIVEN the bot, logging what its worker does as JSON
    let env = [
        ("RUST_LOG", "error,opkit::worker=info"),
        ("OPKIT_LOG_FORMAT", "json"),
    ];
    let Connected {
        slack,
        mut connection,
        mut bot,
        ..
    } = connected_with(&env, true).await;
    let mut logs = BufReader::new(bot.stderr.take().unwrap()).lines();

    // WHEN a mention is answered, and Slack sends the same event again
    connection
        .send(mention_envelope("env-2", "U1", "queue join perf"))
        .await;
    assert_eq!(connection.receive().await, json!({"envelope_id": "env-2"}));
    slack.wait_for(2, WAIT).await;
    let mut again = mention_envelope("env-3", "U1", "queue join perf");
    again["retry_attempt"] = json!(1);
    again["retry_reason"] = json!("timeout");
    connection.send(again).await;

    // THEN the retry is acked, and the worker says it did not run it again
    assert_eq!(connection.receive().await, json!({"envelope_id": "env-3"}));
    let ignored = tokio::time::timeout(WAIT, async {
        while let Some(line) = logs.next_line().await.unwrap() {
            let line: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            let message = line["fields"]["message"].as_str().unwrap_or_default();
            if message.ends_with("ignored") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ignored, Ok(true), "the worker ignored the second delivery");
    let replies = slack.posts_to("/api/chat.postMessage");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(
        replies[0].json()["text"],
        "<@U1> holds *perf* now until you leave."
    );
}

#[tokio::test]
async fn a_refresh_request_opens_a_new_connection_that_works() {
    let Connected {
        slack,
        mut socket,
        connection: mut first,
        bot: _bot,
        ..
    } = connected().await;
    join_queue(&slack, &mut first, "before", "perf", 2).await;

    // WHEN Slack asks for a refresh
    socket.offer(&slack, "2");
    first
        .send(json!({"type": "disconnect", "reason": "refresh_requested",
                     "debug_info": {"host": "applink-fake"}}))
        .await;

    // THEN the bot asks for a new URL, connects to it and drops the old socket
    let mut second = socket.accept().await;
    assert_eq!(second.path, "/link/2");
    first.closed_by_bot().await;
    assert_eq!(slack.posts_to(OPEN).len(), 2);
    // AND commands work on the new connection
    second.hello().await;
    join_queue(&slack, &mut second, "after", "staging", 4).await;
}

#[tokio::test]
async fn a_lost_connection_is_reopened_after_a_short_backoff() {
    let Connected {
        slack,
        mut socket,
        connection,
        bot: _bot,
        ..
    } = connected().await;

    // WHEN the socket drops without a word
    socket.offer(&slack, "2");
    drop(connection);

    // THEN the bot opens a new one (after its first, 1 s, backoff) that works
    let mut second = socket.accept().await;
    assert_eq!(second.path, "/link/2");
    second.hello().await;
    join_queue(&slack, &mut second, "after", "perf", 3).await;
}

#[tokio::test]
async fn a_transient_refusal_to_open_is_retried_after_a_backoff() {
    let slack = FakeSlack::start().await;
    let mut socket = FakeSocketMode::start().await;
    // GIVEN Slack fails the first apps.connections.open with a transient error
    slack.push_response(CannedResponse::slack_error("internal_error"));
    socket.offer(&slack, "1");

    let _bot = start_bot(&slack, &[], false);

    // THEN the bot tries again and connects
    let mut connection = socket.accept().await;
    assert_eq!(slack.posts_to(OPEN).len(), 2);
    connection.hello().await;
    join_queue(&slack, &mut connection, "env-1", "perf", 3).await;
}

#[tokio::test]
async fn ctrl_c_closes_the_socket_and_exits_cleanly() {
    let Connected {
        bot,
        mut connection,
        ..
    } = connected().await;

    let pid = bot.id().expect("the bot is running").to_string();
    let kill = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());

    connection.closed_by_bot().await;
    let (code, _) = exit_and_stderr(bot).await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn sigterm_closes_the_socket_and_finishes_the_jobs_it_acked() {
    // GIVEN the bot over Socket Mode, the reply to a command it acked under way
    // (Slack takes two seconds to take it)
    let Connected {
        slack,
        bot,
        mut connection,
        ..
    } = connected_with(&[("RUST_LOG", "error,opkit::serve=info")], true).await;
    slack.push_response(CannedResponse::delayed(std::time::Duration::from_secs(2)));
    let response_url = slack.response_url("drain");
    connection
        .send(slash_envelope(
            "env-t",
            "U1",
            "queue join perf",
            &response_url,
        ))
        .await;
    assert_eq!(
        connection.receive().await,
        working_ack("env-t", "queue join perf")
    );
    slack.wait_for(2, WAIT).await;

    // WHEN it is sent SIGTERM
    let pid = bot.id().expect("the bot is running").to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());

    // THEN it closes the socket, finishes the acked job, and exits cleanly
    connection.closed_by_bot().await;
    let (code, stderr) = exit_and_stderr(bot).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("finishing the acked jobs before stopping"),
        "{stderr}"
    );
    assert!(!stderr.contains("unfinished"), "{stderr}");
    assert!(!stderr.contains("not delivered"), "{stderr}");
}

#[tokio::test]
async fn malformed_envelopes_are_acked_or_ignored_and_the_connection_keeps_working() {
    let Connected {
        slack,
        mut connection,
        bot: _bot,
        ..
    } = connected().await;

    // Not JSON, and a frame without an envelope_id: nothing to ack. Acks are
    // sent in order, so the next frame received answers the next envelope.
    connection.send_text("{not json".to_owned()).await;
    connection
        .send(json!({"type": "events_api", "payload": {}}))
        .await;
    // An unknown type: acked so that Slack does not send it again.
    connection
        .send(json!({"envelope_id": "bad-1", "type": "brand_new_type", "payload": {}}))
        .await;
    assert_eq!(connection.receive().await, json!({"envelope_id": "bad-1"}));
    // An event payload that does not parse.
    connection
        .send(json!({"envelope_id": "bad-2", "type": "events_api",
                     "accepts_response_payload": false, "payload": {"type": "event_callback"}}))
        .await;
    assert_eq!(connection.receive().await, json!({"envelope_id": "bad-2"}));
    // A slash command missing its fields: acked, and the user is told why.
    connection
        .send(json!({"envelope_id": "bad-3", "type": "slash_commands",
                     "accepts_response_payload": true, "payload": {"text": "queue join perf"}}))
        .await;
    let ack = connection.receive().await;
    assert_eq!(ack["envelope_id"], "bad-3");
    assert_eq!(ack["payload"]["response_type"], "ephemeral");
    let shown = ack["payload"]["text"].as_str().unwrap();
    assert!(shown.starts_with("Sorry, I cannot run that:"), "{shown}");
    // A slash command from an invalid user id: refused as over HTTP.
    let mut bad_user = slash_envelope("bad-4", "bob", "queue join perf", &slack.response_url("x"));
    bad_user["accepts_response_payload"] = json!(false);
    connection.send(bad_user).await;
    assert_eq!(connection.receive().await, json!({"envelope_id": "bad-4"}));
    // A binary frame is ignored.
    connection
        .socket
        .send(Message::binary(b"\x00\x01".to_vec()))
        .await
        .unwrap();

    // THEN nothing ran, and a good command still works
    assert_eq!(slack.requests().len(), 1, "{:?}", slack.requests());
    join_queue(&slack, &mut connection, "good", "perf", 2).await;
}

#[tokio::test]
async fn link_disabled_stops_the_bot_with_a_clear_message() {
    let Connected {
        bot,
        mut connection,
        ..
    } = connected_capturing(true).await;

    connection
        .send(json!({"type": "disconnect", "reason": "link_disabled"}))
        .await;

    let (code, stderr) = exit_and_stderr(bot).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr
            .trim()
            .starts_with("opkit: Slack disabled this app's Socket Mode connection (link_disabled)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_refused_app_token_stops_the_bot_naming_slacks_error() {
    let slack = FakeSlack::start().await;
    slack.push_response(CannedResponse::slack_error("invalid_auth"));

    let (code, stderr) = exit_and_stderr(start_bot(&slack, &[], true)).await;

    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "opkit: cannot open a Socket Mode connection: Slack refused apps.connections.open: invalid_auth"
    );
}

#[tokio::test]
async fn a_missing_or_malformed_app_token_fails_start_up_naming_it() {
    let slack = FakeSlack::start().await;
    let missing = start_bot(&slack, &[("SLACK_APP_TOKEN", "")], true);
    let (code, stderr) = exit_and_stderr(missing).await;
    assert_eq!(code, Some(1));
    assert_eq!(stderr.trim(), "opkit: SLACK_APP_TOKEN is not set");

    let bot_token = start_bot(
        &slack,
        &[("SLACK_APP_TOKEN", "xoxb-not-an-app-token")],
        true,
    );
    let (code, stderr) = exit_and_stderr(bot_token).await;
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr.trim(),
        "opkit: SLACK_APP_TOKEN is invalid: expected an app-level token starting with `xapp-`"
    );
    assert!(!stderr.contains("xoxb-not-an-app-token"));
    assert!(slack.requests().is_empty());
}

#[tokio::test]
async fn socket_mode_and_an_http_address_do_not_mix() {
    let output = Command::new(env!("CARGO_BIN_EXE_opkit"))
        .args(["serve", "--socket-mode", "--addr", "127.0.0.1:0"])
        .env("SLACK_APP_TOKEN", "xapp-test")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--socket-mode"), "{stderr}");
}

/// Payloads in the shapes Slack sends (shared/opkit/tests/fixtures/slack/README.md).
const CONNECT_MENTION: &str =
    include_str!("../../../shared/opkit/tests/fixtures/slack/connect_mention.json");
const CONNECT_CLICK: &str =
    include_str!("../../../shared/opkit/tests/fixtures/slack/connect_click.json");

#[tokio::test]
async fn a_member_of_another_organisation_gets_no_answer_over_the_socket() {
    // GIVEN the bot allowed for its own workspace only
    let Connected {
        slack,
        mut connection,
        bot: _bot,
        ..
    } = connected_with(&[("OPKIT_TEAM_IDS", "T0001")], false).await;

    // WHEN a Slack Connect user of another organisation mentions it and clicks
    // one of its buttons in a shared channel
    let payload: Value = serde_json::from_str(CONNECT_MENTION).unwrap();
    connection
        .send(json!({"envelope_id": "ext-1", "type": "events_api",
                     "accepts_response_payload": false, "payload": payload}))
        .await;
    // THEN each envelope is acked, so that Slack does not send it again
    assert_eq!(connection.receive().await, json!({"envelope_id": "ext-1"}));
    let payload: Value = serde_json::from_str(CONNECT_CLICK).unwrap();
    connection
        .send(json!({"envelope_id": "ext-2", "type": "interactive",
                     "accepts_response_payload": false, "payload": payload}))
        .await;
    assert_eq!(connection.receive().await, json!({"envelope_id": "ext-2"}));

    // AND nothing ran: the next request Slack sees is the answer to a member's command
    join_queue(&slack, &mut connection, "member", "perf", 2).await;
    assert!(slack.posts_to("/api/chat.postMessage").is_empty());
}

#[tokio::test]
async fn a_frame_over_the_limit_is_refused_from_its_header_and_the_bot_reconnects() {
    // GIVEN the bot, logging warnings as JSON
    let env = [("RUST_LOG", "warn"), ("OPKIT_LOG_FORMAT", "json")];
    let Connected {
        slack,
        mut socket,
        connection: mut first,
        mut bot,
        ..
    } = connected_with(&env, true).await;
    let mut logs = BufReader::new(bot.stderr.take().unwrap()).lines();
    socket.offer(&slack, "2");

    // WHEN Slack's side starts a text frame announcing one byte more than the
    // limit, and sends only its first bytes
    let size =
        (opkit::ingress::Route::largest_body() + opkit::ingress::ENVELOPE_OVERHEAD) as u64 + 1;
    let mut header = vec![0x81, 127]; // FIN + text; a 64-bit length follows (RFC 6455 §5.2)
    header.extend_from_slice(&size.to_be_bytes());
    header.extend_from_slice(br#"{"envelope_id":"huge","type":"events_api","payload":{"#);
    let raw = first.socket.get_mut();
    tokio::io::AsyncWriteExt::write_all(raw, &header)
        .await
        .unwrap();

    // THEN the bot drops the connection at once, without waiting for the rest of
    // the frame, and says why
    first.closed_by_bot().await;
    let why = tokio::time::timeout(WAIT, async {
        while let Some(line) = logs.next_line().await.unwrap() {
            let line: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if let Some(why) = line["fields"]["why"].as_str() {
                return why.to_owned();
            }
        }
        String::new()
    })
    .await
    .expect("the bot logged why it dropped the connection");
    assert!(why.contains("too long"), "{why}");

    // AND it reconnects, and a large envelope within the limit (a mention past
    // 64 KiB) is handled on the new connection
    let mut second = socket.accept().await;
    second.hello().await;
    let mut mention = mention_envelope("big", "U1", "queue join perf");
    mention["payload"]["event"]["blocks"] = json!([{"type": "rich_text", "block_id": "pad",
        "elements": [{"type": "rich_text_section",
                      "elements": [{"type": "text", "text": "x".repeat(100 * 1024)}]}]}]);
    assert!(mention.to_string().len() > 64 * 1024);
    second.send(mention).await;
    assert_eq!(second.receive().await, json!({"envelope_id": "big"}));
    let posts = slack.wait_for(3, WAIT).await;
    assert_eq!(posts[2].path, "/api/chat.postMessage");
    assert_eq!(
        posts[2].json()["text"],
        "<@U1> holds *perf* now until you leave."
    );
}
