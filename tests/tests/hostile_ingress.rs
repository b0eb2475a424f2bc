//! Hostile input at the deployed ingress (API Gateway event → ingress handler, on
//! the emulator): for each route, a table of forged, stale, tampered, malformed
//! and oversized requests — each refused with its status, and none with any side
//! effect: nothing on the queue, nothing in the table, nothing sent to Slack.
//! Then Slack's escapes used as injections, through the whole path: treated as
//! text, nothing changed, nothing announced to a channel.
//! Run through `bash infra/test.sh` (it starts the emulator).

use std::time::Duration;

use opkit::slack::{SigningSecret, sign};
use opkit::store::{GrantStore, StateStore};
use opkit_tests::serverless::{ADMIN, SECRET, Stack, apigw_v2_event};
use opkit_tests::slash_command_body;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// How a case's request is signed.
enum Signed {
    /// Correctly, now.
    Now,
    /// With this secret, at now + `skew` seconds.
    With(&'static str, i64),
    /// These exact headers (name, value).
    Headers(Vec<(&'static str, String)>),
    /// A correct signature of `other` (another body), sent with this body.
    Over(Vec<u8>),
}

/// One hostile request and the status it must get.
struct Case {
    name: &'static str,
    body: Vec<u8>,
    signed: Signed,
    status: u16,
}

fn case(name: &'static str, body: impl Into<Vec<u8>>, signed: Signed, status: u16) -> Case {
    Case {
        name,
        body: body.into(),
        signed,
        status,
    }
}

/// Sends each case to `path` and checks its status; then that nothing at all
/// happened: no job queued, no item in the table, no request to Slack.
async fn refuse_all(stack: &Stack, path: &str, cases: Vec<Case>) {
    let secret = SigningSecret::new(SECRET);
    let now = stack.now().timestamp();
    for case in &cases {
        let headers: Vec<(&str, String)> = match &case.signed {
            Signed::Now => vec![
                ("x-slack-request-timestamp", now.to_string()),
                ("x-slack-signature", sign(&secret, now, &case.body)),
            ],
            Signed::With(key, skew) => vec![
                ("x-slack-request-timestamp", (now + skew).to_string()),
                (
                    "x-slack-signature",
                    sign(&SigningSecret::new(*key), now + skew, &case.body),
                ),
            ],
            Signed::Headers(headers) => headers.clone(),
            Signed::Over(other) => vec![
                ("x-slack-request-timestamp", now.to_string()),
                ("x-slack-signature", sign(&secret, now, other)),
            ],
        };
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, text) = stack
            .ingress(apigw_v2_event(path, &case.body, &headers, true))
            .await;
        assert_eq!(status, case.status, "{path} {}: {text}", case.name);
        if status != 200 {
            assert!(!text.is_empty(), "{}: a refusal says why", case.name);
        }
    }
    assert!(stack.drain().await.is_empty(), "{path}: nothing was queued");
    assert_eq!(table_items(stack).await, 0, "{path}: nothing was stored");
    assert!(
        stack.slack.requests().is_empty(),
        "{path}: nothing went to Slack"
    );
}

/// How many items the stack's table holds.
async fn table_items(stack: &Stack) -> i32 {
    let dynamo = aws_sdk_dynamodb::Client::new(&opkit_tests::aws::sdk_config().await);
    dynamo
        .scan()
        .table_name(stack.config.table.clone().unwrap())
        .send()
        .await
        .unwrap()
        .count()
}

/// The signature and timestamp cases every route shares, for a body that would
/// otherwise be accepted.
fn signature_cases(good: &[u8], other_good: &[u8]) -> Vec<Case> {
    let now_ts = || chrono::Utc::now().timestamp();
    let mut tampered = good.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let mut appended = good.to_vec();
    appended.extend_from_slice(b"&user_id=UADMIN");
    let secret = SigningSecret::new(SECRET);
    let real = |ts: i64| sign(&secret, ts, good);
    vec![
        case(
            "forged: another secret",
            good,
            Signed::With("not-the-secret", 0),
            401,
        ),
        case("stale: 301 s old", good, Signed::With(SECRET, -301), 401),
        case("stale: a day old", good, Signed::With(SECRET, -86_400), 401),
        case("future: 301 s ahead", good, Signed::With(SECRET, 301), 401),
        case(
            "future: a year ahead",
            good,
            Signed::With(SECRET, 31_536_000),
            401,
        ),
        case("tampered body", tampered, Signed::Over(good.to_vec()), 401),
        case(
            "body extended after signing",
            appended,
            Signed::Over(good.to_vec()),
            401,
        ),
        case(
            "a valid signature over another body",
            good,
            Signed::Over(other_good.to_vec()),
            401,
        ),
        case("no headers", good, Signed::Headers(vec![]), 401),
        case(
            "no timestamp",
            good,
            Signed::Headers(vec![("x-slack-signature", real(now_ts()))]),
            401,
        ),
        case(
            "no signature",
            good,
            Signed::Headers(vec![("x-slack-request-timestamp", now_ts().to_string())]),
            401,
        ),
        case(
            "timestamp not a number",
            good,
            Signed::Headers(vec![
                ("x-slack-request-timestamp", "now".into()),
                ("x-slack-signature", real(now_ts())),
            ]),
            401,
        ),
        case(
            "timestamp with a sign",
            good,
            Signed::Headers(vec![
                ("x-slack-request-timestamp", format!("+{}", now_ts())),
                ("x-slack-signature", real(now_ts())),
            ]),
            401,
        ),
        case(
            "timestamp in milliseconds",
            good,
            Signed::Headers(vec![
                ("x-slack-request-timestamp", (now_ts() * 1000).to_string()),
                ("x-slack-signature", sign(&secret, now_ts() * 1000, good)),
            ]),
            401,
        ),
        case(
            "timestamp past i64",
            good,
            Signed::Headers(vec![
                ("x-slack-request-timestamp", "99999999999999999999".into()),
                ("x-slack-signature", real(now_ts())),
            ]),
            401,
        ),
        case(
            "signature timestamp differs from the header's",
            good,
            Signed::Headers(vec![
                ("x-slack-request-timestamp", now_ts().to_string()),
                ("x-slack-signature", real(now_ts() - 60)),
            ]),
            401,
        ),
        case(
            "signature without v0=",
            good,
            Signed::Headers(vec![
                ("x-slack-request-timestamp", now_ts().to_string()),
                ("x-slack-signature", real(now_ts())[3..].to_string()),
            ]),
            401,
        ),
        case(
            "signature of another version",
            good,
            Signed::Headers(vec![
                ("x-slack-request-timestamp", now_ts().to_string()),
                (
                    "x-slack-signature",
                    real(now_ts()).replacen("v0=", "v1=", 1),
                ),
            ]),
            401,
        ),
        case(
            "signature cut short",
            good,
            Signed::Headers(vec![
                ("x-slack-request-timestamp", now_ts().to_string()),
                ("x-slack-signature", real(now_ts())[..40].to_string()),
            ]),
            401,
        ),
        case(
            "signature not hex",
            good,
            Signed::Headers(vec![
                ("x-slack-request-timestamp", now_ts().to_string()),
                ("x-slack-signature", format!("v0={}", "zz".repeat(32))),
            ]),
            401,
        ),
        case(
            "oversized, signed",
            [
                good,
                b"&pad=",
                "x".repeat(opkit::ingress::Route::largest_body()).as_bytes(),
            ]
            .concat(),
            Signed::Now,
            413,
        ),
        case(
            "oversized, unsigned",
            vec![b'a'; opkit::ingress::Route::largest_body() + 1],
            Signed::Headers(vec![]),
            413,
        ),
    ]
}

#[tokio::test]
async fn hostile_slash_commands_are_refused_with_no_side_effect() {
    let stack = Stack::start().await;
    let url = stack.slack.response_url("x");
    let good = slash_command_body("U1", "queue join perf", &url);
    let other = slash_command_body("U2", "queue join perf", &url);
    let mut cases = signature_cases(good.as_bytes(), other.as_bytes());
    let form = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).unwrap();
    cases.extend([
        case("broken percent-encoding", "%%%", Signed::Now, 400),
        case(
            "a truncated escape",
            format!("{good}&text=%E2%9C"),
            Signed::Now,
            400,
        ),
        case("only separators", "=&=&&=", Signed::Now, 400),
        case("empty body", "", Signed::Now, 400),
        case(
            "non-UTF-8 bytes",
            [b"\xff\xfe\xfd&".as_slice(), good.as_bytes()].concat(),
            Signed::Now,
            400,
        ),
        case(
            "JSON instead of a form",
            json!({"text": "hi"}).to_string(),
            Signed::Now,
            400,
        ),
        case("missing fields", "text=queue+join+perf", Signed::Now, 400),
        case(
            "a field twice",
            format!("{good}&user_id=UADMIN"),
            Signed::Now,
            400,
        ),
        case(
            "a user id that is not one",
            slash_command_body("U1; DROP TABLE", "help", &url),
            Signed::Now,
            400,
        ),
        case(
            "a user id with a Slack escape",
            slash_command_body("<!channel>", "help", &url),
            Signed::Now,
            400,
        ),
        case(
            "a channel id that is not one",
            good.replace("channel_id=C0001", "channel_id=%23general"),
            Signed::Now,
            400,
        ),
        // Refused with a 200 and an ephemeral reason: Slack shows a non-200 to
        // the user as an error of its own.
        case(
            "a team not allowed",
            good.replace("team_id=T0001", "team_id=T0666"),
            Signed::Now,
            200,
        ),
        case(
            "an allowed team id with a suffix",
            good.replace("team_id=T0001", "team_id=T0001%0A"),
            Signed::Now,
            200,
        ),
        case(
            "an empty team",
            good.replace("team_id=T0001", "team_id="),
            Signed::Now,
            400,
        ),
        // Slack's SSL check comes unsigned: only its exact shape passes so.
        case(
            "Slack's ssl_check, unsigned",
            include_str!("../../shared/opkit/tests/fixtures/slack/ssl_check.form"),
            Signed::Headers(vec![]),
            200,
        ),
        case(
            "ssl_check with a command, unsigned",
            format!("ssl_check=1&{good}"),
            Signed::Headers(vec![]),
            401,
        ),
        case(
            "ssl_check with another field, unsigned",
            form(&[("ssl_check", "1"), ("token", "x"), ("text", "roles grant")]),
            Signed::Headers(vec![]),
            401,
        ),
        case(
            "ssl_check with junk",
            form(&[("ssl_check", "1"), ("token", "\u{0}")]),
            Signed::Now,
            200,
        ),
    ]);
    refuse_all(&stack, "/slack/commands", cases).await;
}

fn event_body(event_id: &str, team: &str, text: &str) -> String {
    json!({
        "token": "unused", "team_id": team, "api_app_id": "A0001",
        "event": {"type": "app_mention", "user": "U1", "text": format!("<@UBOT> {text}"),
                  "ts": "1795000000.000100", "channel": "C0001", "event_ts": "1795000000.000100"},
        "type": "event_callback", "event_id": event_id, "event_time": 1_795_000_000,
        "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": true}]
    })
    .to_string()
}

#[tokio::test]
async fn hostile_events_are_refused_with_no_side_effect() {
    let stack = Stack::start().await;
    let good = event_body("Ev1", "T0001", "queue join perf");
    let other = event_body("Ev2", "T0001", "queue join perf");
    let mut cases = signature_cases(good.as_bytes(), other.as_bytes());
    let nested = format!(
        r#"{{"type":"event_callback","team_id":"T0001","event_id":"Ev3","event":{}{}}}"#,
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let with = |key: &str, value: Value| {
        let mut body: Value = serde_json::from_str(&good).unwrap();
        body[key] = value;
        body.to_string()
    };
    let with_event = |key: &str, value: Value| {
        let mut body: Value = serde_json::from_str(&good).unwrap();
        body["event"][key] = value;
        body.to_string()
    };
    cases.extend([
        case("not JSON", "{not json", Signed::Now, 400),
        case(
            "a form instead of JSON",
            "type=event_callback",
            Signed::Now,
            400,
        ),
        case("empty body", "", Signed::Now, 400),
        case("JSON null", "null", Signed::Now, 400),
        case("a JSON array", "[1,2,3]", Signed::Now, 400),
        case("deeply nested JSON", nested, Signed::Now, 400),
        case(
            "non-UTF-8 bytes",
            [good.as_bytes(), b"\xff\xfe".as_slice()].concat(),
            Signed::Now,
            400,
        ),
        case(
            "an unknown type",
            with("type", json!("nope")),
            Signed::Now,
            400,
        ),
        case(
            "an event id that is a number",
            with("event_id", json!(7)),
            Signed::Now,
            400,
        ),
        case(
            "a mention without a user",
            with_event("user", Value::Null),
            Signed::Now,
            400,
        ),
        case(
            "a user id that is not one",
            with_event("user", json!("<!channel>")),
            Signed::Now,
            400,
        ),
        case(
            "a channel id that is not one",
            with_event("channel", json!("../../C0001")),
            Signed::Now,
            400,
        ),
        // Refused on the Events API with a 200 that runs nothing: a non-200 makes
        // Slack retry and, repeated, disable the app's event subscription.
        case(
            "a team not allowed",
            event_body("Ev4", "T0666", "help"),
            Signed::Now,
            200,
        ),
        case(
            "the bot's own message",
            with_event("bot_id", json!("B1")),
            Signed::Now,
            200,
        ),
        case(
            "a challenge that is not a string",
            json!({"type": "url_verification", "challenge": {"x": 1}}).to_string(),
            Signed::Now,
            400,
        ),
    ]);
    refuse_all(&stack, "/slack/events", cases).await;
}

fn click_body(team: &str, action_id: &str, value: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": "U1", "username": "u1", "team_id": team},
        "team": {"id": team, "domain": "opkit-test"},
        "channel": {"id": "C0001", "name": "ops"},
        "response_url": "http://127.0.0.1:9/response/click",
        "trigger_id": "1.2.3",
        "actions": [{"action_id": action_id, "block_id": "b1", "value": value,
                     "type": "button", "action_ts": "1795000001.000400"}]
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

#[tokio::test]
async fn hostile_interactions_are_refused_with_no_side_effect() {
    let stack = Stack::start().await;
    let good = click_body("T0001", "opkit:confirm", "p-1");
    let other = click_body("T0001", "opkit:cancel", "p-1");
    let mut cases = signature_cases(good.as_bytes(), other.as_bytes());
    let payload = |json: &str| serde_urlencoded::to_string([("payload", json)]).unwrap();
    let nested = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    cases.extend([
        case("no payload", "foo=bar", Signed::Now, 400),
        case(
            "broken percent-encoding",
            "payload=%ZZ%7B",
            Signed::Now,
            400,
        ),
        case("payload not JSON", payload("{nope"), Signed::Now, 400),
        case(
            "payload a JSON string",
            payload("\"block_actions\""),
            Signed::Now,
            400,
        ),
        case("payload a JSON array", payload("[]"), Signed::Now, 400),
        case("deeply nested payload", payload(&nested), Signed::Now, 400),
        case(
            "non-UTF-8 bytes",
            [b"payload=\xff\xfe".as_slice(), good.as_bytes()].concat(),
            Signed::Now,
            400,
        ),
        case("payload twice", format!("{good}&{good}"), Signed::Now, 400),
        // Another app's element: Slack's request, acked with an empty 200.
        case(
            "someone else's action",
            click_body("T0001", "other:confirm", "p-1"),
            Signed::Now,
            200,
        ),
        case(
            "a request id that is too long",
            click_body("T0001", "opkit:confirm", &"p".repeat(65)),
            Signed::Now,
            400,
        ),
        case(
            "an empty request id",
            click_body("T0001", "opkit:confirm", ""),
            Signed::Now,
            400,
        ),
        case(
            "not a click",
            payload(&json!({"type": "view_submission", "user": {"id": "U1"}}).to_string()),
            Signed::Now,
            200,
        ),
        case(
            "a team not allowed",
            click_body("T0666", "opkit:confirm", "p-1"),
            Signed::Now,
            200,
        ),
    ]);
    refuse_all(&stack, "/slack/interactions", cases).await;
}

#[tokio::test]
async fn other_paths_and_methods_are_refused_with_no_side_effect() {
    let stack = Stack::start().await;
    let body = slash_command_body("U1", "help", &stack.slack.response_url("x"));
    let cases = vec![case("signed, to an unknown path", body, Signed::Now, 404)];
    refuse_all(&stack, "/slack/commandz", cases).await;
}

/// Runs a signed slash command through the whole path; returns the reply posted.
async fn run(stack: &Stack, user: &str, text: &str) -> Value {
    let before = stack.slack.count();
    let body = slash_command_body(user, text, &stack.slack.response_url("inj"));
    let (status, _) = stack
        .ingress(stack.signed_event("/slack/commands", &body))
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        stack
            .work(&stack.drain().await)
            .await
            .batch_item_failures
            .is_empty()
    );
    stack.slack.wait_for(before + 1, WAIT).await[before]
        .json()
        .clone()
}

#[tokio::test]
async fn slack_escapes_used_as_injections_are_treated_as_text() {
    let stack = Stack::start().await;
    // Slack sends a typed `<` as `&lt;`: `&lt;!channel&gt;` is someone typing the text.
    let attempts = [
        ("U1", "queue join <!channel>"),
        ("U1", "queue join &lt;!channel&gt;"),
        ("U1", "queue join <!here|here>"),
        ("U1", "queue join perf for <!everyone>"),
        ("U1", "queue join <@U2|perf>"),
        ("U1", "queue join <#C0001|perf>"),
        ("U1", "queue join <https://evil.example|perf>"),
        ("U1", "queue join perf\n<!channel> is now yours"),
        ("U1", "queue join `perf`"),
        ("U1", "queue leave <!channel>"),
        ("U1", "<!channel> queue join perf"),
        ("U1", "<@UADMIN> roles grant <@U1> admin"),
        ("U1", "roles grant <@U1|UADMIN> admin"),
        ("U1", "can <@U2|<!channel>> queue join perf"),
        ("U1", "help <!subteam^S0001|@oncall>"),
        (ADMIN, "roles grant <!channel> ops"),
        (ADMIN, "roles grant <@U2> <!channel>"),
        (ADMIN, "roles grant <@U2|UADMIN> &lt;!here&gt;"),
    ];
    for (user, text) in attempts {
        let reply = run(&stack, user, text).await;
        // THEN each is refused, to the asker alone
        assert_eq!(reply["response_type"], "ephemeral", "{text}: {reply}");
    }
    // (a signed text with bytes that are not UTF-8 is read as text, lossily)
    let before = stack.slack.count();
    let body = slash_command_body("U1", "queue join perf", &stack.slack.response_url("inj"))
        .replace("text=queue", "text=%FF%FEqueue");
    assert_eq!(
        stack
            .ingress(stack.signed_event("/slack/commands", &body))
            .await
            .0,
        200
    );
    assert!(
        stack
            .work(&stack.drain().await)
            .await
            .batch_item_failures
            .is_empty()
    );
    let reply = stack.slack.wait_for(before + 1, WAIT).await[before]
        .json()
        .clone();
    assert_eq!(reply["response_type"], "ephemeral", "{reply}");
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .starts_with("I don't know `\u{fffd}\u{fffd}queue`"),
        "{reply}"
    );
    // AND nothing changed: no queue state, no grant
    assert_eq!(stack.store.load("queue").await.unwrap().version, 0);
    assert!(stack.store.all_grants().await.unwrap().is_empty());
    // AND nothing was said in a channel
    assert!(stack.slack.posts_to("/api/chat.postMessage").is_empty());

    // WHEN a label claims another user, the mention's id counts, not its label
    let granted = run(&stack, ADMIN, "roles grant <@U2|UADMIN> ops").await;
    assert_eq!(
        granted["text"],
        "<@UADMIN> granted *ops* to <@U2> until revoked."
    );
    let grants = stack.store.all_grants().await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].user.as_str(), "U2");
}
