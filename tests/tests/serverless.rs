//! The deployed path end to end on the AWS emulator: API Gateway event → ingress
//! handler → SQS → worker handler → DynamoDB → Slack, and the expiry pass.
//! Run through `bash infra/test.sh` (it starts the emulator).

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;
use opkit::audit::Outcome;
use opkit::ingress::Ingress;
use opkit::job::{EnvelopeKey, Job, QueueMessage};
use opkit::slack::SigningSecret;
use opkit::sqs::SqsQueue;
use opkit::store::{AuditLog, GrantStore, StateStore};
use opkit::timing::START_MARGIN_SECS;
use opkit_tests::serverless::{SECRET, Stack, apigw_v2_event};
use opkit_tests::{CannedResponse, signed_headers, slash_command_body};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn command(stack: &Stack, user: &str, text: &str, reply_to: &str) -> (u16, String) {
    let body = slash_command_body(user, text, &stack.slack.response_url(reply_to));
    stack
        .ingress(stack.signed_event("/slack/commands", &body))
        .await
}

/// Queues a command through the ingress and runs it through the worker.
async fn run(stack: &Stack, user: &str, text: &str) -> Value {
    stack.run(user, text).await
}

const USERS_INFO: &str = "/api/users.info";

#[tokio::test]
async fn from_22_00_is_read_in_the_askers_slack_zone_looked_up_once() {
    // GIVEN an admin whose Slack profile says Paris, in Slack's user object shape
    let stack = Stack::start().await;
    let admin = opkit_tests::serverless::ADMIN;
    stack.slack.add_user(json!({
        "id": admin, "team_id": "T0001", "name": "admin", "deleted": false,
        "is_bot": false, "tz": "Europe/Paris",
        "tz_label": "Central European Time", "tz_offset": 3600
    }));
    // WHEN they grant a window from 22:00 for 2 hours, and another from 06:00
    for (who, at) in [("UBOB", "22:00"), ("UCAROL", "06:00")] {
        let granted = run(
            &stack,
            admin,
            &format!("roles grant <@{who}> ops from {at} for 2 hours"),
        )
        .await;
        assert!(
            granted["text"].as_str().unwrap().contains("for 2h"),
            "{granted}"
        );
        // THEN the stored window starts at that time in Paris
        let user = opkit::ids::UserId::parse(who).unwrap();
        let grants = stack.store.grants_for(&user).await.unwrap();
        let paris = opkit::timespec::parse_zone("Europe/Paris").unwrap();
        let expected =
            opkit::timespec::parse_start(&format!("{at} Europe/Paris"), stack.now(), paris);
        assert_eq!(grants[0].starts_at, Some(expected.unwrap()), "{who}");
        // AND the reply shows it as Slack's date token, drawn in each reader's zone
        let start = grants[0].starts_at.unwrap();
        assert!(
            granted["text"].as_str().unwrap().contains(&format!(
                "<!date^{}^{{date_short_pretty}} at {{time}}|",
                start.timestamp()
            )),
            "{granted}"
        );
    }
    // AND Slack was asked for the admin's zone once, with a form-encoded users.info
    let lookups = stack.slack.posts_to(USERS_INFO);
    assert_eq!(lookups.len(), 1);
    // AND a command that reads no time asks nothing
    run(&stack, admin, "queue status").await;
    assert_eq!(stack.slack.posts_to(USERS_INFO).len(), 1);
}

#[tokio::test]
async fn a_slash_command_flows_from_api_gateway_to_the_response_url() {
    let stack = Stack::start().await;

    // GIVEN a signed slash command, base64-encoded in an API Gateway v2 event
    let (status, ack) = command(&stack, "U1", "queue join perf for 2h", "one").await;

    // THEN the ingress acks at once, ephemerally, and puts one job on SQS
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&ack).unwrap(),
        json!({"response_type": "ephemeral", "replace_original": false, "text": "Working on `queue join perf for 2h`…"})
    );
    let messages = stack.drain().await;
    assert_eq!(messages.len(), 1);
    let sealed: Value = serde_json::from_str(&messages[0].body).unwrap();
    assert_eq!(sealed["job"]["v"], 1);
    assert_eq!(sealed["job"]["caller"]["user"], "U1");
    assert_eq!(
        sealed["mac"].as_str().map(str::len),
        Some(64),
        "sealed: an HMAC-SHA256 in hex"
    );
    assert!(
        stack.slack.requests().is_empty(),
        "the ingress calls no Slack API"
    );

    // WHEN the worker Lambda gets it as an SQS event
    let response = stack.work(&messages).await;

    // THEN the reply reaches the response_url, and the state is in DynamoDB
    assert!(response.batch_item_failures.is_empty());
    let posts = stack.slack.wait_for(1, WAIT).await;
    assert_eq!(posts[0].path, "/response/one");
    assert_eq!(
        posts[0].json(),
        &json!({"response_type": "in_channel", "text": "<@U1> holds *perf* now for 2h."})
    );
    let state = stack.store.load("queue").await.unwrap();
    assert_eq!(state.version, 1);
    assert_eq!(state.value.unwrap()["envs"]["perf"][0]["user"], "U1");
    let audit = stack.store.recent(None, 10).await.unwrap();
    let outcomes: Vec<&str> = audit.iter().map(|r| r.outcome.name()).collect();
    assert_eq!(outcomes, ["succeeded", "requested"]);
}

#[tokio::test]
async fn plain_text_bodies_and_the_checks_work_through_api_gateway_too() {
    let stack = Stack::start().await;
    let body = slash_command_body("U1", "whoami", &stack.slack.response_url("x"));
    let headers = signed_headers(
        &SigningSecret::new(SECRET),
        stack.now().timestamp(),
        body.as_bytes(),
    );
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _) = stack
        .ingress(apigw_v2_event(
            "/slack/commands",
            body.as_bytes(),
            &headers,
            false,
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(stack.drain().await.len(), 1);

    let (status, text) = stack
        .ingress(stack.signed_event("/slack/commands", "ssl_check=1&token=x"))
        .await;
    assert_eq!((status, text.as_str()), (200, ""));
    let challenge = r#"{"token":"t","challenge":"abc123","type":"url_verification"}"#;
    let (status, text) = stack
        .ingress(stack.signed_event("/slack/events", challenge))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"challenge": "abc123"})
    );
    assert!(stack.drain().await.is_empty());
}

#[tokio::test]
async fn the_same_message_delivered_three_times_runs_once() {
    // GIVEN a stateful command's message that SQS delivers three times, as if each
    // delete were lost (its run completed every time)
    let stack = Stack::start().await;
    command(&stack, "U1", "queue join perf", "dup").await;
    let message = stack.drain().await.remove(0);
    for receive_count in 1..=3 {
        let redelivered = QueueMessage {
            receive_count,
            ..message.clone()
        };
        let response = stack.work(&[redelivered]).await;
        assert!(response.batch_item_failures.is_empty());
    }
    // THEN the command ran once
    assert_eq!(
        stack.store.load("queue").await.unwrap().version,
        1,
        "one write"
    );
    // AND its reply went out, and once more at most: the second delivery cannot
    // tell a lost delete from a runner that died after committing and before
    // posting, so it posts the committed reply again — the same reply — and
    // marks it posted; the third posts nothing
    let replies = stack.slack.wait_for(2, WAIT).await;
    assert_eq!(stack.slack.requests().len(), 2, "not three");
    assert_eq!(replies[0].body, replies[1].body);
}

#[tokio::test]
async fn a_hundred_concurrent_joins_through_the_worker_lose_no_one() {
    let stack = Arc::new(Stack::start().await);
    // GIVEN 100 users' commands queued through the ingress
    let users: Vec<String> = (0..100).map(|i| format!("U{i:03}")).collect();
    for user in &users {
        assert_eq!(command(&stack, user, "queue join perf", user).await.0, 200);
    }
    let messages = stack.drain().await;
    assert_eq!(messages.len(), 100);
    // WHEN ten worker invocations run ten jobs each, all at once (conflicting
    // writes to one script's state: each is retried on fresh state)
    let mut invocations = Vec::new();
    for batch in messages.chunks(10) {
        let stack = stack.clone();
        let batch = batch.to_vec();
        invocations.push(tokio::spawn(async move { stack.work(&batch).await }));
    }
    for invocation in invocations {
        assert!(invocation.await.unwrap().batch_item_failures.is_empty());
    }
    // THEN all 100 are in line, each once, and each got a reply
    let state = stack.store.load("queue").await.unwrap();
    let mut in_line: Vec<String> = state.value.unwrap()["envs"]["perf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user"].as_str().unwrap().to_string())
        .collect();
    in_line.sort();
    assert_eq!(in_line, users);
    assert_eq!(state.version, 100);
    assert_eq!(stack.slack.wait_for(100, WAIT).await.len(), 100);
}

#[tokio::test]
async fn a_replayed_slash_command_runs_once() {
    // GIVEN a signed slash command captured and sent again within the five minutes
    let stack = Stack::start().await;
    let body = slash_command_body("UEVE", "queue join perf", &stack.slack.response_url("r"));
    for _ in 0..2 {
        let (status, _) = stack
            .ingress(stack.signed_event("/slack/commands", &body))
            .await;
        assert_eq!(status, 200);
    }
    // WHEN the worker takes both messages
    let messages = stack.drain().await;
    assert_eq!(messages.len(), 2);
    assert!(stack.work(&messages).await.batch_item_failures.is_empty());
    // THEN the command ran once: one reply, one place in line
    assert_eq!(stack.slack.wait_for(1, WAIT).await.len(), 1);
    let state = stack.store.load("queue").await.unwrap();
    assert_eq!(state.version, 1);
    assert_eq!(
        state.value.unwrap()["envs"]["perf"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn twelve_concurrent_expiry_passes_announce_a_window_once() {
    // GIVEN a maintenance window that opened a minute ago
    let stack = Stack::start().await;
    let admin = opkit_tests::serverless::ADMIN;
    let later = (stack.now() + Span::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let granted = run(
        &stack,
        admin,
        &format!("roles grant <@UBOB> ops from {later} for 2h"),
    )
    .await;
    assert!(
        granted["text"].as_str().unwrap().contains("granted *ops*"),
        "{granted}"
    );
    stack.clock.advance(Span::minutes(61));
    // WHEN twelve passes run at once against the table
    let reports = tokio::join!(
        stack.expire(),
        stack.expire(),
        stack.expire(),
        stack.expire(),
        stack.expire(),
        stack.expire(),
        stack.expire(),
        stack.expire(),
        stack.expire(),
        stack.expire(),
        stack.expire(),
        stack.expire(),
    );
    // THEN exactly one of them claims the announcement and posts it
    let r = [
        reports.0, reports.1, reports.2, reports.3, reports.4, reports.5, reports.6, reports.7,
        reports.8, reports.9, reports.10, reports.11,
    ];
    let started: usize = r.iter().map(|r| r.windows_started).sum();
    assert_eq!(started, 1, "{r:?}");
    let posts = stack.slack.posts_to("/api/chat.postMessage");
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("started"),
        "{:?}",
        posts[0].json()
    );
}

#[tokio::test]
async fn a_timed_grant_ends_on_time_and_the_channel_is_told() {
    let stack = Stack::start().await;
    let admin = opkit_tests::serverless::ADMIN;
    let granted = run(&stack, admin, "roles grant <@UBOB> admin for 1h").await;
    let granted = granted["text"].as_str().unwrap();
    assert!(
        granted.starts_with("<@UADMIN> granted *admin* to <@UBOB> until "),
        "{granted}"
    );
    assert!(
        run(&stack, "UBOB", "audit last 1").await["text"]
            .as_str()
            .unwrap()
            .contains("requested")
    );

    // WHEN the hour passes: denied at once, even before any expiry pass or TTL
    stack.clock.advance(Span::hours(1));
    assert_eq!(
        run(&stack, "UBOB", "audit last 1").await["text"],
        "Sorry, you need admin to run `audit`."
    );
    assert_eq!(
        stack.store.all_grants().await.unwrap().len(),
        1,
        "still stored"
    );

    // AND the expiry pass ends it and tells the channel it was granted in
    let report = stack.expire().await;
    assert_eq!((report.grants_ended, report.posted), (1, 1));
    let notices = stack.slack.posts_to("/api/chat.postMessage");
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].json()["channel"], "C0001");
    assert_eq!(
        notices[0].json()["text"],
        "*admin* role for <@UBOB> ended — its time is up."
    );
    assert_eq!(notices[0].header("authorization"), Some("Bearer xoxb-test"));
    assert!(stack.store.all_grants().await.unwrap().is_empty());
    // THEN still denied after the item is gone, and a second pass does nothing
    assert_eq!(
        run(&stack, "UBOB", "audit last 1").await["text"],
        "Sorry, you need admin to run `audit`."
    );
    assert_eq!(stack.expire().await.grants_ended, 0);
    let bob = opkit::ids::UserId::parse("UBOB").unwrap();
    let system = stack.store.recent(Some(&bob), 10).await.unwrap();
    assert!(system.iter().any(|r| r.outcome.name() == "system"));
}

#[tokio::test]
async fn bad_requests_at_the_ingress_put_nothing_on_the_queue() {
    let stack = Stack::start().await;
    let body = slash_command_body("U1", "queue join perf", &stack.slack.response_url("bad"));
    let now = stack.now().timestamp();
    let forge = |secret: &str, ts: i64, body: &str| {
        let headers = signed_headers(&SigningSecret::new(secret), ts, body.as_bytes());
        headers.map(|(k, v)| (k.to_string(), v))
    };
    let event = |headers: &[(String, String)], body: &str| {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        apigw_v2_event("/slack/commands", body.as_bytes(), &headers, true)
    };
    let cases = [
        ("forged", event(&forge("wrong", now, &body), &body), 401),
        ("stale", event(&forge(SECRET, now - 301, &body), &body), 401),
        ("unsigned", event(&[], &body), 401),
        (
            "wrong team",
            stack.signed_event("/slack/commands", &body.replace("T0001", "T0666")),
            200,
        ),
        (
            "oversized",
            stack.signed_event(
                "/slack/commands",
                &format!(
                    "{body}&pad={}",
                    "x".repeat(opkit::ingress::Route::Commands.max_body())
                ),
            ),
            413,
        ),
        (
            "malformed",
            stack.signed_event("/slack/commands", "%%%"),
            400,
        ),
        (
            "missing fields",
            stack.signed_event("/slack/commands", "text=hi"),
            400,
        ),
    ];
    for (name, request, expected) in cases {
        let (status, text) = stack.ingress(request).await;
        assert_eq!(status, expected, "{name}: {text}");
    }
    assert!(stack.drain().await.is_empty(), "nothing was queued");
    assert!(stack.slack.requests().is_empty());
}

#[tokio::test]
async fn a_failing_send_message_still_gets_the_user_an_answer() {
    let stack = Stack::start().await;
    // an ingress whose queue does not exist: SendMessage fails
    let missing = format!("{}-gone", stack.queues.url);
    let key = stack.config.require_envelope_key().unwrap().clone();
    let queue = Arc::new(SqsQueue::new(stack.sqs.clone(), missing, key));
    let ingress = Ingress::new(&stack.config, Arc::new(stack.clock.clone()), queue).unwrap();
    let body = slash_command_body("U1", "queue join perf", &stack.slack.response_url("x"));
    let response =
        opkit_ingress::handle(&ingress, stack.signed_event("/slack/commands", &body)).await;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(answer["response_type"], "ephemeral");
    assert_eq!(
        answer["text"],
        "Sorry, I could not queue your command; please try again in a moment."
    );
}

#[tokio::test]
async fn a_slack_500_then_200_delivers_the_reply_once() {
    let stack = Stack::start().await;
    stack.slack.push_response(CannedResponse::status(500));
    command(&stack, "U1", "queue join perf", "flaky").await;
    let response = stack.work(&stack.drain().await).await;
    assert!(response.batch_item_failures.is_empty());
    let requests = stack.slack.wait_for(2, WAIT).await;
    let answered: Vec<u16> = requests.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [500, 200]);
    assert_eq!(
        stack.store.load("queue").await.unwrap().version,
        1,
        "the command ran once"
    );
}

#[tokio::test]
async fn an_aws_command_runs_through_the_worker_against_the_emulator() {
    let stack = Stack::start().await;
    let prefix = opkit_tests::aws::unique_name("e2e");
    let cw = opkit_tests::aws_packs::cloudwatch_client("us-east-1").await;
    opkit_tests::aws_packs::seed_alarm(
        &cw,
        &format!("{prefix}-cpu"),
        "ALARM",
        "Threshold crossed: 3 datapoints",
    )
    .await;
    let reply = run(&stack, "U1", &format!("alarms prefix {prefix}")).await;
    let text = reply["text"].as_str().unwrap();
    assert!(text.contains(&format!("{prefix}-cpu")), "{text}");
    assert!(text.contains("us-east-1"), "the region is named: {text}");
    assert!(text.contains("Threshold crossed: 3 datapoints"), "{text}");
}

#[tokio::test]
async fn a_scheduled_command_is_queued_by_the_expiry_pass_and_answered_by_the_worker() {
    let stack = Stack::start().await;
    let added = run(
        &stack,
        opkit_tests::serverless::ADMIN,
        "schedule add standup \"every 1h\" <#C0001|ops> queue status",
    )
    .await;
    assert!(
        added["text"]
            .as_str()
            .unwrap()
            .contains("scheduled `queue status` every 1h"),
        "{added}"
    );
    let before = stack.slack.requests().len();
    // not due yet: nothing queued
    assert_eq!(stack.expire().await.scheduled_runs, 0);
    assert!(stack.drain().await.is_empty());
    // an hour later the pass queues it, once; the worker runs it and posts it
    stack.clock.advance(Span::hours(1));
    assert_eq!(stack.expire().await.scheduled_runs, 1);
    assert_eq!(stack.expire().await.scheduled_runs, 0);
    let jobs = stack.drain().await;
    assert_eq!(jobs.len(), 1);
    assert!(stack.work(&jobs).await.batch_item_failures.is_empty());
    let posted = stack.slack.wait_for(before + 1, WAIT).await;
    let post = &posted[before];
    assert_eq!(post.path, "/api/chat.postMessage");
    assert_eq!(post.json()["channel"], "C0001");
    assert_eq!(
        post.json()["text"],
        "No environment is reserved.\n_Scheduled `standup`, run as <@UADMIN>_"
    );
}

async fn eve_holds_a_role(stack: &Stack) -> bool {
    let eve = opkit::ids::UserId::parse("UEVE").unwrap();
    !stack.store.grants_for(&eve).await.unwrap().is_empty()
}

#[tokio::test]
async fn forged_and_tampered_envelopes_on_the_queue_run_nothing_and_are_audited() {
    let stack = Stack::start().await;
    let admin = opkit_tests::serverless::ADMIN;
    // GIVEN Eve's genuine envelope, from the ingress, asking for admin for herself
    let (status, _) = command(&stack, "UEVE", "roles grant <@UEVE> admin", "eve").await;
    assert_eq!(status, 200);
    let genuine = stack.drain().await.remove(0).body;
    let sealed: Value = serde_json::from_str(&genuine).unwrap();
    let mut as_admin = sealed["job"].clone();
    as_admin["caller"]["user"] = json!(admin);
    let as_admin: Job = serde_json::from_value(as_admin).unwrap();
    // AND three envelopes that name the admin, as anyone allowed to send could write
    let forgeries = [
        // valid JSON naming the admin, without a MAC
        (
            "no MAC",
            serde_json::to_string(&as_admin).unwrap(),
            "not sealed",
        ),
        // sealed, but with a key that is not the stack's
        (
            "wrong MAC",
            as_admin.encode(&EnvelopeKey::new(&"x".repeat(40)).unwrap()),
            "does not match",
        ),
        // Eve's genuine envelope with the caller changed to the admin
        (
            "tampered",
            genuine.replace(r#""user":"UEVE""#, &format!(r#""user":"{admin}""#)),
            "does not match",
        ),
    ];
    for (_, body, _) in &forgeries {
        assert_ne!(body, &genuine);
        stack.send_raw(body).await;
    }
    let messages = stack.drain().await;
    assert_eq!(messages.len(), 3);

    // WHEN the worker Lambda gets them
    let response = stack.work(&messages).await;

    // THEN they are dropped, not retried: nothing ran, nobody was answered
    assert!(response.batch_item_failures.is_empty());
    assert!(!eve_holds_a_role(&stack).await, "no grant was made");
    assert!(stack.slack.requests().is_empty());
    // AND each is audited as a forgery under the admin it named, with its message id
    let audit = stack.store.recent(None, 10).await.unwrap();
    assert_eq!(audit.len(), 3, "{audit:?}");
    for (name, body, says) in &forgeries {
        let message = messages.iter().find(|m| &m.body == body).unwrap();
        let record = audit
            .iter()
            .find(|r| matches!(&r.outcome, Outcome::Forged { reason } if reason.contains(&message.id)))
            .unwrap_or_else(|| panic!("{name}: no audit record names {}", message.id));
        assert_eq!(record.user.as_str(), admin, "{name}");
        assert_eq!(record.text, "roles grant <@UEVE> admin", "{name}");
        assert!(
            matches!(&record.outcome, Outcome::Forged { reason } if reason.contains(says)),
            "{name}: {:?}",
            record.outcome
        );
    }

    // AND genuine envelopes still run: Eve's own is denied, the admin's grants
    stack.send_raw(&genuine).await;
    let response = stack.work(&stack.drain().await).await;
    assert!(response.batch_item_failures.is_empty());
    let denied = stack.slack.wait_for(1, WAIT).await;
    assert_eq!(
        denied[0].json()["text"],
        "Sorry, you need admin to run `roles grant`."
    );
    assert!(!eve_holds_a_role(&stack).await);
    let granted = run(&stack, admin, "roles grant <@UEVE> admin").await;
    assert!(
        granted["text"]
            .as_str()
            .unwrap()
            .contains("granted *admin*"),
        "{granted}"
    );
    assert!(eve_holds_a_role(&stack).await);
}

#[tokio::test]
async fn records_an_invocation_has_no_time_to_start_go_back_to_the_queue_untouched() {
    let stack = Stack::start().await;
    // GIVEN three commands on the queue
    for user in ["U1", "U2", "U3"] {
        assert_eq!(command(&stack, user, "queue join perf", user).await.0, 200);
    }
    let messages = stack.drain().await;
    assert_eq!(messages.len(), 3);
    // WHEN the worker is invoked with less than the start margin left
    let almost = stack.now() + Span::seconds(i64::from(START_MARGIN_SECS)) - Span::milliseconds(1);
    let response = stack.work_until(&messages, almost).await;
    // THEN every record is reported as a failure, and none of them ran
    let mut failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let mut ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    failed.sort_unstable();
    ids.sort_unstable();
    assert_eq!(failed, ids);
    assert!(stack.slack.requests().is_empty());
    assert_eq!(stack.store.load("queue").await.unwrap().version, 0);
    // AND their redelivery, in an invocation with time ahead, runs each once
    let response = stack.work(&messages).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stack.slack.wait_for(3, WAIT).await.len(), 3);
    assert_eq!(stack.store.load("queue").await.unwrap().version, 3);
}
