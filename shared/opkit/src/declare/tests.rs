//! Declarative commands end to end inside the engine: the file, its templates
//! and actions against a local fake service (axum on loopback), run through a
//! [`TestBot`] like any built-in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

use super::*;
use crate::engine::gate::Decision;
use crate::testing::TestBot;

/// The issue's example, exactly as written.
const ISSUE_EXAMPLE: &str = include_str!("../../fixtures/declare/issue-example.toml");

const TOKEN: &str = "s3cr3t-deploys-token";

/// One request the fake service saw.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) method: Method,
    pub(super) uri: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A fake service on loopback: it records every request and answers by path —
/// `/services/…/version` a version, `/echo` the JSON it was sent, `/uri…` the
/// path and query it was sent (`{"uri": …}`), `/refuse` a 401 that repeats the
/// Authorization header, `/text` plain text, `/hang` never, `/moved?to=URL` a
/// 302 to `URL`; any path with an `X-Echo` header repeats its path in that
/// header's form (`secret_url_tests::echoed`).
pub(super) struct Fake {
    pub(super) base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub(super) async fn start() -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let record = record.clone();
                async move {
                    let path = uri.path().to_string();
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    record.lock().unwrap().push(Seen {
                        method,
                        uri: uri.to_string(),
                        headers: headers.clone(),
                        body: body.clone(),
                    });
                    let mut answer_headers = HeaderMap::new();
                    if path == "/moved" {
                        let url = reqwest::Url::parse(&format!("http://x{uri}")).unwrap();
                        let to = url.query_pairs().find(|(k, _)| k == "to").unwrap().1;
                        answer_headers.insert(axum::http::header::LOCATION, to.parse().unwrap());
                    }
                    let echo = headers.get("x-echo").and_then(|v| v.to_str().ok());
                    let (status, body) = match path.as_str() {
                        _ if let Some(mode) = echo => super::secret_url_tests::echoed(mode, &uri, &headers),
                        "/moved" => (StatusCode::FOUND, b"moved".to_vec()),
                        "/echo" => (StatusCode::OK, body.to_vec()),
                        p if p.starts_with("/uri") => (
                            StatusCode::OK,
                            serde_json::to_vec(&serde_json::json!({ "uri": uri.to_string() }))
                                .unwrap(),
                        ),
                        "/refuse" => (
                            StatusCode::UNAUTHORIZED,
                            format!("token {auth} is not valid").into_bytes(),
                        ),
                        "/text" => (StatusCode::OK, b"<html>hello</html>".to_vec()),
                        "/hang" => {
                            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                            (StatusCode::OK, Vec::new())
                        }
                        "/answer" => (
                            StatusCode::OK,
                            br#"{"version":"<!here> 1`2","deployed_at":"<https://evil.example|docs>"}"#
                                .to_vec(),
                        ),
                        _ => (
                            StatusCode::OK,
                            br#"{"version":"1.4.2","deployed_at":"2026-11-29"}"#.to_vec(),
                        ),
                    };
                    (status, answer_headers, body)
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, seen }
    }

    pub(super) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

pub(super) fn load(text: &str, vars: &[(&str, &str)]) -> Result<Declared, LoadError> {
    let lookup = env(vars);
    Parsed::parse("commands.toml", text)?.bind(&lookup, |n| lookup(n).map(Secret::new))
}

pub(super) fn bot(declared: &Declared) -> TestBot {
    let services = Services::http();
    TestBot::with(|b| declared.add_to(b, &services).unwrap())
}

async fn issue_bot(fake: &Fake) -> TestBot {
    let declared = load(
        ISSUE_EXAMPLE,
        &[("DEPLOYS_URL", &fake.base), ("DEPLOYS_TOKEN", TOKEN)],
    )
    .unwrap();
    bot(&declared)
}

#[tokio::test]
async fn the_issue_example_works_exactly_as_written() {
    // GIVEN the issue's file, a fake deploys service and its token
    let fake = Fake::start().await;
    let t = issue_bot(&fake).await;
    // WHEN an admin asks
    let reply = t.text("UADMIN", "deploys status web").await;
    // THEN the service was called with the token, and the reply reads its answer
    assert_eq!(reply, "*web* runs `1.4.2`, deployed 2026-11-29");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(seen[0].uri, "/services/web/version");
    assert_eq!(
        seen[0].headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    // AND someone without ops or admin is refused, nothing sent
    assert_eq!(
        t.text("UBOB", "deploys status web").await,
        "Sorry, you need ops, or admin to run `deploys status`."
    );
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_its_target_receives_nothing() {
    // GIVEN a service that answers 302 to another service on loopback
    let (fake, elsewhere) = (Fake::start().await, Fake::start().await);
    let file = r#"
[[command]]
name = "r1"
describe = "redirect"
[command.http]
url = "{{ env.DEPLOYS_URL }}/moved?to={{ env.ELSEWHERE }}/leak"
headers = { X-Api-Key = "{{ secret.DEPLOYS_TOKEN }}" }
reply = "path={{ json.path }} status={{ status }}"
"#;
    let target = format!("{}/leak", elsewhere.base);
    let declared = load(
        file,
        &[
            ("DEPLOYS_URL", &fake.base),
            ("ELSEWHERE", &elsewhere.base),
            ("DEPLOYS_TOKEN", TOKEN),
        ],
    )
    .unwrap();
    let t = bot(&declared);
    // WHEN the command runs
    let reply = t.text("UADMIN", "r1").await;
    // THEN the 302 is the answer: the command fails naming it
    assert!(
        reply.contains("the service answered HTTP 302: moved"),
        "{reply}"
    );
    // AND the service was asked once, the place it named never
    assert_eq!(fake.seen().len(), 1);
    let asked = reqwest::Url::parse(&format!("http://x{}", fake.seen()[0].uri)).unwrap();
    assert!(asked.query_pairs().any(|(_, to)| to == target), "{asked}");
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
}

#[test]
fn a_reply_with_an_unknown_filter_or_test_is_refused_at_load_with_its_line() {
    // the defect: these loaded (check, push, start-up), then every run failed
    let file = |reply: &str| {
        format!(
            "[[command]]\nname = \"f1\"\ndescribe = \"f\"\nusage = \"<p>\"\n\
             [command.http]\nurl = \"https://x.example/\"\nreply = \"\"\"\nfirst\n{reply}\"\"\"\n"
        )
    };
    for (reply, reason) in [
        ("{{ p|safe }}", "unknown filter: filter safe is unknown"),
        ("{{ p|e }}", "unknown filter: filter e is unknown"),
        ("{{ p|tojson }}", "unknown filter: filter tojson is unknown"),
        (
            "{% if p is banana %}x{% endif %}",
            "unknown test: test banana is unknown",
        ),
        (
            "{% for c in p %}{{ c|nope }}{% endfor %}",
            "filter nope is unknown",
        ),
        // F10: a filter or test named by a string, applied by another filter
        ("{{ [p]|map(\"safe\")|join }}", "filter safe is unknown"),
        (
            "{{ [p]|select(\"banana\", 3)|join }}",
            "test banana is unknown",
        ),
        (
            "{{ [p]|select(\"banana\")|join }}",
            "test banana is unknown",
        ),
        (
            "{{ [p]|rejectattr(\"x\", \"banana\")|list }}",
            "test banana is unknown",
        ),
    ] {
        let err = load(&file(reply), &[]).unwrap_err().to_string();
        // the reply's second line: the file's 9th
        assert!(err.starts_with("commands.toml:9:"), "{reply}: {err}");
        assert!(err.contains(reason), "{reply}: {err}");
    }
    // filters the engine has still load
    for reply in [
        "{{ p|upper }}",
        "{{ p|default('x') }}",
        "{% if p is defined %}x{% endif %}",
        "{{ [p]|map(\"upper\")|join }}",
        "{{ [p]|select(\"defined\")|join }}",
        "{{ [p]|map(attribute=\"x\")|join }}",
        // an attribute alone tests its truth: not a test's name
        "{{ [p]|selectattr(\"active\")|list }}",
        "{{ [p]|rejectattr(\"x\", \"defined\")|list }}",
    ] {
        load(&file(reply), &[]).unwrap_or_else(|e| panic!("{reply}: {e}"));
    }
}

#[tokio::test]
async fn an_argument_cannot_change_the_path_or_add_parameters() {
    let fake = Fake::start().await;
    let t = issue_bot(&fake).await;
    let reply = t.text("UADMIN", "deploys status \"../admin?x=1&y\"").await;
    assert!(reply.starts_with("*../admin?x=1&amp;y* runs"), "{reply}");
    let seen = fake.seen();
    assert_eq!(seen[0].uri, "/services/..%2Fadmin%3Fx%3D1%26y/version");
    // `..` alone would climb out of /services: refused, nothing sent
    let reply = t.text("UADMIN", "deploys status ..").await;
    assert!(
        reply.contains("cannot be a part of a URL's path"),
        "{reply}"
    );
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn declared_commands_are_in_help_and_get_did_you_mean() {
    let fake = Fake::start().await;
    let t = issue_bot(&fake).await;
    let help = t.text("UADMIN", "help").await;
    assert!(
        help.contains(
            "• `deploys status &lt;service&gt;` — Which version of a service is deployed"
        ),
        "{help}"
    );
    // help is filtered by access, as for built-ins
    assert!(!t.text("UBOB", "help").await.contains("deploys status"));
    let one = t.text("UADMIN", "help deploys status").await;
    assert!(one.starts_with("`deploys status &lt;service&gt;`"), "{one}");
    assert!(one.contains("Needs: ops, or admin"), "{one}");
    let typo = t.text("UADMIN", "deploys statsu web").await;
    assert!(typo.contains("Did you mean `deploys status"), "{typo}");
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn a_json_body_is_built_as_json_whatever_the_arguments_hold() {
    let fake = Fake::start().await;
    let file = r#"
[[command]]
name = "note"
usage = "<service> <text…>"
[command.http]
url = "{{ env.BASE }}/echo"
body = { service = "{{ service }}", note = "{{ text }}", fixed = 3, tags = ["{{ service }}", "x"] }
reply = "{{ json.note }}"
"#;
    let t = bot(&load(file, &[("BASE", &fake.base)]).unwrap());
    let evil = r#"a", "admin": true, "x": "\"}"#;
    t.text("UADMIN", &format!("note web {evil}")).await;
    let seen = fake.seen();
    assert_eq!(seen[0].method, Method::POST, "a body means POST");
    assert_eq!(seen[0].headers["content-type"], "application/json");
    let sent: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    // the note is the text as typed (read once, quotes and all), as one JSON string
    let typed = crate::engine::Args::new(crate::text::tokenize(evil)).rest_text(0);
    assert!(typed.contains("admin"), "{typed}");
    assert_eq!(
        sent,
        serde_json::json!({"service": "web", "note": typed, "fixed": 3, "tags": ["web", "x"]})
    );
}

#[tokio::test]
async fn a_header_with_a_line_break_is_refused_and_nothing_is_sent() {
    let fake = Fake::start().await;
    let file = r#"
[[command]]
name = "tag"
usage = "<value>"
[command.http]
url = "{{ env.BASE }}/echo"
headers = { X-Tag = "{{ value }}" }
"#;
    let t = bot(&load(file, &[("BASE", &fake.base)]).unwrap());
    let reply = t.text("UADMIN", "tag \"a\nX-Admin: 1\"").await;
    assert!(reply.contains("line break"), "{reply}");
    // the refusal is ours, not the engine's "invalid operation:" (M3)
    assert!(!reply.contains("invalid operation"), "{reply}");
    assert!(fake.seen().is_empty());
    assert_eq!(t.text("UADMIN", "tag ok").await, "Done: HTTP 200.");
    assert_eq!(fake.seen()[0].headers["x-tag"], "ok");
}

#[tokio::test]
async fn a_reply_shows_arguments_and_answers_as_text() {
    let fake = Fake::start().await;
    let file = r#"
[[command]]
name = "deploys status"
usage = "<service>"
[command.http]
url = "{{ env.BASE }}/answer"
reply = "*{{ service }}* runs `{{ json.version }}`, see {{ json.deployed_at }}"
"#;
    let t = bot(&load(file, &[("BASE", &fake.base)]).unwrap());
    let reply = t.text("UADMIN", "deploys status &lt;!channel&gt;").await;
    assert_eq!(
        reply,
        "*&lt;!channel&gt;* runs `&lt;!here&gt; 1ˋ2`, see &lt;https://evil.example|docs&gt;"
    );
}

#[tokio::test]
async fn secrets_never_reach_a_reply_or_an_error() {
    // GIVEN a service that repeats the token in its refusal, and a key in a query
    let fake = Fake::start().await;
    let file = r#"
[[command]]
name = "refused"
[command.http]
url = "{{ env.BASE }}/refuse"
headers = { Authorization = "Bearer {{ secret.TOKEN }}" }

[[command]]
name = "unreachable"
[command.http]
url = "http://127.0.0.1:1/x?key={{ secret.TOKEN }}"
"#;
    let t = bot(&load(file, &[("BASE", &fake.base), ("TOKEN", TOKEN)]).unwrap());
    // WHEN either fails
    let refused = t.text("UADMIN", "refused").await;
    let unreachable = t.text("UADMIN", "unreachable").await;
    // THEN the asker hears why, without the secret
    assert_eq!(
        refused,
        "`refused` failed: the service answered HTTP 401: token Bearer *** is not valid"
    );
    assert!(
        unreachable
            .starts_with("`unreachable` failed: the service at 127.0.0.1:1 could not be reached"),
        "{unreachable}"
    );
    assert!(
        !unreachable.contains("key="),
        "no URL in the error: {unreachable}"
    );
    for text in [&refused, &unreachable] {
        assert!(!text.contains(TOKEN), "{text}");
    }
    // AND nothing in the audit trail holds it either
    for record in t.audit(10).await {
        assert!(!format!("{record:?}").contains(TOKEN));
    }
    // AND the log's redactor knows it
    assert_eq!(crate::secret::redact(&format!("x {TOKEN} y")), "x *** y");
}

#[tokio::test]
async fn non_json_and_silent_services_get_a_clear_error() {
    let fake = Fake::start().await;
    let file = r#"
[[command]]
name = "text"
[command.http]
url = "{{ env.BASE }}/text"
reply = "{{ json.version }}"

[[command]]
name = "hang"
[command.http]
url = "{{ env.BASE }}/hang"
timeout = "2s"
"#;
    let t = bot(&load(file, &[("BASE", &fake.base)]).unwrap());
    assert_eq!(
        t.text("UADMIN", "text").await,
        "`text` failed: the service answered HTTP 200, but not with JSON"
    );
    // the timeout is reqwest's, on tokio's clock: paused, it passes at once
    tokio::time::pause();
    let host = fake.base.trim_start_matches("http://");
    assert_eq!(
        t.text("UADMIN", "hang").await,
        format!("`hang` failed: no answer from {host} within 2s")
    );
}

/// Secrets of every awkward kind: URL delimiters, quotes, spaces, non-ASCII,
/// `%`, and base64's `+ / =`.
const AWKWARD_SECRETS: [&str; 6] = [
    "abc\"def/x-token",
    "tök/x-token-1",
    "s3cr3t TOKEN/+&=123",
    "tok#frag&other=2",
    "100%25-sure-%2F",
    "aGVsbG8+d29y/bGQ=",
];

#[tokio::test]
async fn a_secret_never_comes_back_in_any_form_it_was_sent_in() {
    // the defect: `abc"def/x` in a URL was sent as `abc%22def/x`, a form the
    // scrubber did not know, and the error quoted the URL to the asker, the
    // audit trail and the log
    let fake = Fake::start().await;
    let file = r#"
[[command]]
name = "echo uri"
[command.http]
url = "{{ env.BASE }}/uri/{{ secret.TOKEN }}?key={{ secret.TOKEN }}"
reply = "got {{ json.uri }}"

[[command]]
name = "down"
[command.http]
url = "http://127.0.0.1:1/a/{{ secret.TOKEN }}?key={{ secret.TOKEN }}"
"#;
    for secret in AWKWARD_SECRETS {
        let t = bot(&load(file, &[("BASE", &fake.base), ("TOKEN", secret)]).unwrap());
        // WHEN a service repeats the path and query it was sent, and another is down
        let echoed = t.text("UADMIN", "echo uri").await;
        let down = t.text("UADMIN", "down").await;
        // THEN the query carried the secret whole, as one value
        let sent = fake.seen().last().unwrap().uri.clone();
        let url = reqwest::Url::parse(&format!("http://x{sent}")).unwrap();
        assert_eq!(
            url.query_pairs().into_owned().collect::<Vec<_>>(),
            [("key".to_string(), secret.to_string())],
            "{secret}: {sent}"
        );
        // AND neither the replies, nor the audit trail, nor the log show it in
        // any form it was sent in
        assert!(echoed.starts_with("got /uri/"), "{secret}: {echoed}");
        assert!(
            down.starts_with("`down` failed: the service at 127.0.0.1:1"),
            "{down}"
        );
        let audit: Vec<String> = t.audit(20).await.iter().map(|r| format!("{r:?}")).collect();
        for text in [echoed.as_str(), down.as_str()]
            .into_iter()
            .chain(audit.iter().map(String::as_str))
        {
            for form in super::scrub::sent_forms(secret) {
                assert!(!text.contains(&form), "{secret} as {form} in: {text}");
            }
            // the part of the URL after the host is not in an error at all
            assert!(!text.contains("/a/"), "{text}");
        }
        let logged = crate::secret::redact(&format!("GET {sent} failed")).into_owned();
        assert!(
            !logged.contains(&sent[sent.find("key=").unwrap() + 4..]),
            "{logged}"
        );
    }
}

#[tokio::test]
async fn a_confirmed_command_calls_only_once_confirmed() {
    let fake = Fake::start().await;
    let file = r#"
[[command]]
name = "deploys rollback"
usage = "<service>"
confirm = true
in_channel = true
[command.http]
method = "POST"
url = "{{ env.BASE }}/services/{{ service }}/rollback?who=me"
reply = "Rolled back *{{ service }}*."
"#;
    let t = bot(&load(file, &[("BASE", &fake.base)]).unwrap());
    let prompt = t.say("UADMIN", "deploys rollback web").await;
    // the host with its port (M11: the port was left out)
    let host = fake.base.trim_start_matches("http://");
    assert!(
        prompt.text.as_str().contains(&format!(
            "It would `call POST {host}/services/web/rollback`"
        )),
        "{}",
        prompt.text.as_str()
    );
    assert!(fake.seen().is_empty(), "nothing is called before the click");
    let done = t.click("UADMIN", &prompt, Decision::Confirm).await;
    assert!(
        done.text.as_str().contains("Rolled back *web*."),
        "{:?}",
        done.text
    );
    assert_eq!(fake.seen().len(), 1);
    assert_eq!(fake.seen()[0].uri, "/services/web/rollback?who=me");
}

#[tokio::test]
async fn an_alias_runs_its_command_authorized_and_gated_as_that_command() {
    let file = r#"
[[command]]
name = "me"
describe = "Who am I"
command = "whoami"

[[command]]
name = "drop-bob"
command = "roles revoke <@UBOB> ops"
"#;
    let t = bot(&load(file, &[]).unwrap());
    assert!(t.text("UCAROL", "me").await.contains("<@UCAROL>"));
    // roles revoke needs admin: the alias (open to all) does not lend it
    assert_eq!(
        t.text("UCAROL", "drop-bob").await,
        "Sorry, you need admin to run `drop-bob`."
    );
    // and its confirmation is still asked
    t.text("UADMIN", "roles grant <@UBOB> ops").await;
    let prompt = t.say("UADMIN", "drop-bob").await;
    assert!(!prompt.blocks.is_empty(), "{:?}", prompt.text);
}

fn load_error(text: &str, vars: &[(&str, &str)]) -> String {
    load(text, vars).unwrap_err().to_string()
}

#[test]
fn a_file_that_cannot_be_used_fails_with_its_line_and_the_reason() {
    let unknown_arg = ISSUE_EXAMPLE.replace("services/{{ service }}", "services/{{ servce }}");
    let vars = [
        ("DEPLOYS_URL", "https://d.example"),
        ("DEPLOYS_TOKEN", TOKEN),
    ];
    assert_eq!(
        load_error(&unknown_arg, &vars),
        "commands.toml:9: `servce` is not an argument of this command (it has: service); a \
         template reads the arguments, env.NAME or secret.NAME"
    );
    let unset = load_error(ISSUE_EXAMPLE, &[("DEPLOYS_URL", "https://d.example")]);
    assert_eq!(
        unset,
        "commands.toml:10: the secret `DEPLOYS_TOKEN` (secret.DEPLOYS_TOKEN) is not set: set \
         DEPLOYS_TOKEN, or deployed DEPLOYS_TOKEN_ARN to a Secrets Manager secret"
    );
    let broken = load_error("[[command]]\nname = \"x\"\nusage = <a>\n", &[]);
    assert!(broken.starts_with("commands.toml:3: "), "{broken}");
    let leak = ISSUE_EXAMPLE.replace("{{ json.deployed_at }}", "{{ secret.DEPLOYS_TOKEN }}");
    assert_eq!(
        load_error(&leak, &vars),
        "commands.toml:11: the reply reads `secret.DEPLOYS_TOKEN`: a secret is never shown in Slack"
    );
    let host = ISSUE_EXAMPLE.replace("{{ env.DEPLOYS_URL }}", "https://{{ service }}.example");
    assert!(
        load_error(&host, &vars)
            .starts_with("commands.toml:9: an argument cannot be part of a URL's scheme or host"),
    );
    let syntax = ISSUE_EXAMPLE.replace("{{ json.version }}", "{{ json.version ");
    assert!(load_error(&syntax, &vars).starts_with("commands.toml:11: template"));
    for (file, why) in [
        ("[[command]]\nname = \"x\"\n", "needs exactly one action"),
        (
            "[[command]]\nname = \"x\"\nfoo = 1\ncommand = \"help\"\n",
            "unknown field `foo`",
        ),
        (
            "[[command]]\nname = \"x\"\nusage = \"<a>\"\ncommand = \"help\"\n",
            "takes no `usage`",
        ),
        (
            "[[command]]\nname = \"x\"\naccess = [[\"Ops!\"]]\ncommand = \"help\"\n",
            "`access`",
        ),
        (
            "[[command]]\nname = \"x\"\n[command.lambda]\nfunction = \"{{ x }}\"\n",
            "not an argument",
        ),
        // a look-alike of a built-in name: Cyrillic `е` (tester F15)
        (
            "[[command]]\nname = \"\u{0435}c2 reboot\"\ncommand = \"help\"\n",
            "is not a command name: words of ASCII letters, digits, `-` and `_`",
        ),
    ] {
        let err = load_error(file, &[]);
        assert!(err.contains(why), "{file}: {err}");
        assert!(err.starts_with("commands.toml:"), "{err}");
    }
}

#[test]
fn a_load_error_never_shows_a_secret() {
    // a URL that does not parse, built with the secret in it
    let file = r#"
[[command]]
name = "x"
[command.http]
url = "{{ secret.T }} {{ env.B }}"
"#;
    let err = load_error(file, &[("T", TOKEN), ("B", "https://x")]);
    assert!(!err.contains(TOKEN), "{err}");
}

#[test]
fn the_example_file_loads_and_each_example_runs_its_command() {
    // GIVEN examples/commands.toml with the settings and secrets it reads
    let file = include_str!("../../../../examples/commands.toml");
    let declared = load(
        file,
        &[
            ("DEPLOYS_URL", "https://deploys.example"),
            ("DEPLOYS_TOKEN", TOKEN),
            ("RESTART_FUNCTION", "restart-service"),
        ],
    )
    .unwrap();
    assert_eq!(
        declared.names(),
        [
            "deploys status",
            "deploys rollback",
            "runbook restart",
            "reboot-web"
        ]
    );
    // THEN each example a command shows in help resolves to that command
    let parsed = Parsed::parse("examples/commands.toml", file).unwrap();
    for spec in &parsed.specs {
        for example in &spec.examples {
            let typed = crate::text::tokenize(example);
            let words: Vec<String> = typed
                .iter()
                .map_while(|t| t.as_word().map(str::to_lowercase))
                .collect();
            assert!(words.join(" ").starts_with(&spec.name), "{example}");
            let args = crate::engine::Args::new(typed[spec.name.split(' ').count()..].to_vec());
            spec.usage
                .bind(&args)
                .unwrap_or_else(|e| panic!("{example}: {e}"));
        }
    }
}

#[tokio::test]
async fn a_reply_past_its_budget_is_an_error_naming_the_command() {
    // the defect: this reply over a 600-character argument rendered for
    // minutes on the async runtime, stalling every ack and job beside it
    let fake = Fake::start().await;
    let file = r#"
[[command]]
name = "cube"
usage = "<p>"
describe = "loops over the argument"
[command.http]
url = "{{ env.BASE }}/x"
reply = "{% for a in p %}{% for b in p %}{% for c in p %}{% endfor %}{% endfor %}{% endfor %}done"
"#;
    let t = bot(&load(file, &[("BASE", &fake.base)]).unwrap());
    assert_eq!(
        t.text("UADMIN", &format!("cube {}", "a".repeat(600))).await,
        format!(
            "`cube` could not write its reply: the template takes more than {} steps to render \
             (a loop over a long argument or answer?), so it was stopped",
            template::FUEL
        )
    );
    assert_eq!(t.text("UADMIN", "cube ab").await, "done");
}
