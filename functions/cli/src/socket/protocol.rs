//! Socket Mode's envelope protocol: telling Slack's text frames apart, handing an
//! envelope's payload (already parsed into Opkit's types) to the ingress, and the
//! acknowledgement that answers it.
//!
//! Source: <https://docs.slack.dev/apis/events-api/using-socket-mode>.

use http::StatusCode;
use opkit::ingress::{Answer, Body, ENVELOPE_OVERHEAD, Inbound, Ingress, Route};
use opkit::slack::{EventRequest, Interaction, PayloadError, SlashCommand, UserText};
use serde_json::{Value, json};

/// A text frame from Slack.
#[derive(Debug, PartialEq)]
pub(super) enum Frame {
    /// The connection is ready.
    Hello {
        /// How many connections the app has open, as Slack counts them.
        connections: Option<u64>,
    },
    /// Slack wants this connection replaced (or ended, for `link_disabled`).
    Disconnect {
        /// `warning`, `refresh_requested`, `link_disabled`, ...
        reason: String,
    },
    /// Something to handle and acknowledge.
    Envelope(Envelope),
    /// Nothing to act on; acknowledged if it has an id, so Slack does not resend it.
    Unusable {
        /// The envelope's id, if it had one.
        envelope_id: Option<String>,
        /// What was wrong.
        reason: String,
    },
}

/// An envelope's `type`: which HTTP route its payload would otherwise have gone to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum EnvelopeKind {
    /// `slash_commands`: a slash command's fields.
    SlashCommands,
    /// `events_api`: an Events API body.
    EventsApi,
    /// `interactive`: an interaction payload.
    Interactive,
    /// A type Opkit does not know.
    Unknown(String),
}

impl EnvelopeKind {
    /// The HTTP route the payload would otherwise have come to, whose size limit
    /// it is held to; `None` for a type Opkit does not know.
    fn route(&self) -> Option<Route> {
        match self {
            Self::SlashCommands => Some(Route::Commands),
            Self::EventsApi => Some(Route::Events),
            Self::Interactive => Some(Route::Interactions),
            Self::Unknown(_) => None,
        }
    }

    fn parse(kind: &str) -> Self {
        match kind {
            "slash_commands" => Self::SlashCommands,
            "events_api" => Self::EventsApi,
            "interactive" => Self::Interactive,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

/// An envelope carrying a payload.
#[derive(Debug, PartialEq)]
pub(super) struct Envelope {
    pub(super) id: String,
    pub(super) kind: EnvelopeKind,
    /// The payload as sent; [`route`] parses it by `kind`.
    pub(super) payload: Value,
    pub(super) accepts_response_payload: bool,
    /// How often Slack tried this envelope before (0 the first time).
    pub(super) retry_attempt: u64,
    pub(super) retry_reason: String,
}

pub(super) fn parse_frame(text: &str) -> Frame {
    let unusable = |envelope_id: Option<String>, reason: String| Frame::Unusable {
        envelope_id,
        reason,
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return unusable(None, format!("not JSON: {e}")),
    };
    let id = value
        .get("envelope_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    let field = |name: &str| value.get(name).and_then(Value::as_str);
    match field("type") {
        Some("hello") => Frame::Hello {
            connections: value.get("num_connections").and_then(Value::as_u64),
        },
        Some("disconnect") => Frame::Disconnect {
            reason: field("reason").unwrap_or("unknown").to_owned(),
        },
        Some(kind) => match id {
            // Held to the limit of the route it stands for, as over HTTP; acked, so
            // that Slack does not send it again.
            Some(id)
                if EnvelopeKind::parse(kind)
                    .route()
                    .is_some_and(|route| text.len() > route.max_body() + ENVELOPE_OVERHEAD) =>
            {
                unusable(
                    Some(id),
                    format!(
                        "a `{kind}` envelope of {} bytes, over its route's limit",
                        text.len()
                    ),
                )
            }
            Some(id) => Frame::Envelope(Envelope {
                id,
                kind: EnvelopeKind::parse(kind),
                payload: value.get("payload").cloned().unwrap_or(Value::Null),
                accepts_response_payload: value
                    .get("accepts_response_payload")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                retry_attempt: value
                    .get("retry_attempt")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                retry_reason: field("retry_reason").unwrap_or_default().to_owned(),
            }),
            None => unusable(None, format!("a `{kind}` frame without an envelope_id")),
        },
        None => unusable(id, "no `type`".to_owned()),
    }
}

/// What an envelope's payload is, parsed by the envelope's type.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "built once per envelope and matched at once; a Box buys nothing"
)]
enum Payload {
    /// Something for the ingress to decide on.
    Inbound(Inbound),
    /// Slack is dropping this app's events (`app_rate_limited`): log it, ack it.
    RateLimited {
        /// The workspace whose events are dropped.
        team_id: String,
    },
}

/// Why a payload cannot be handed to the ingress.
#[derive(Debug)]
struct Unreadable {
    /// What it was meant to be ("slash command", "event", ...).
    what: String,
    /// Why it is refused.
    reason: String,
}

impl Unreadable {
    fn payload(what: &str) -> impl FnOnce(PayloadError) -> Self {
        move |e| Self {
            what: what.to_owned(),
            reason: e.to_string(),
        }
    }
}

/// Parses `payload` as the envelope's `kind` says, with the parsers the HTTP routes
/// use (from JSON, as Slack sent it over the socket).
fn read_payload(kind: &EnvelopeKind, payload: Value) -> Result<Payload, Unreadable> {
    let inbound = match kind {
        EnvelopeKind::SlashCommands => SlashCommand::from_json(payload)
            .map(Inbound::Command)
            .map_err(Unreadable::payload("slash command"))?,
        EnvelopeKind::EventsApi => {
            match EventRequest::from_json(payload).map_err(Unreadable::payload("event"))? {
                EventRequest::EventCallback(callback) => Inbound::Event(callback),
                EventRequest::AppRateLimited { team_id, .. } => {
                    return Ok(Payload::RateLimited { team_id });
                }
                EventRequest::UrlVerification { .. } => {
                    return Err(Unreadable {
                        what: "event".into(),
                        reason: "url_verification has no use over Socket Mode".into(),
                    });
                }
            }
        }
        EnvelopeKind::Interactive => Interaction::from_json(payload)
            .map(Inbound::Interaction)
            .map_err(Unreadable::payload("interaction"))?,
        EnvelopeKind::Unknown(other) => {
            return Err(Unreadable {
                what: other.clone(),
                reason: format!("unsupported envelope type `{other}`"),
            });
        }
    };
    Ok(Payload::Inbound(inbound))
}

/// Hands an envelope's payload to the ingress, as the matching HTTP route would
/// after checking the signature: the same decision, through [`Ingress::accept`].
pub(super) async fn route(
    ingress: &Ingress,
    envelope_id: &str,
    kind: &EnvelopeKind,
    payload: Value,
) -> Answer {
    match read_payload(kind, payload) {
        Ok(Payload::Inbound(inbound)) => ingress.accept(inbound).await,
        Ok(Payload::RateLimited { team_id }) => {
            tracing::warn!(team_id, "Slack is dropping events: rate limited");
            Answer::empty()
        }
        Err(Unreadable { what, reason }) => {
            tracing::warn!(envelope_id, what, reason, "refused: malformed payload");
            Answer::refuse(StatusCode::BAD_REQUEST, reason)
        }
    }
}

/// The acknowledgement for `envelope` given the ingress's `answer`, or `None` to
/// leave it unacknowledged so that Slack delivers it again (the ingress answers
/// 5xx only when a retry is wanted: the queue was down).
pub(super) fn ack(envelope: &Envelope, answer: &Answer) -> Option<Value> {
    if answer.status.is_server_error() {
        return None;
    }
    let mut ack = json!({ "envelope_id": envelope.id });
    if envelope.accepts_response_payload {
        // Every message goes through `Body::json`, as over HTTP: Reply::message_fields
        // fits it to Slack's limits.
        let payload = match &answer.body {
            Body::Text(text) if envelope.kind == EnvelopeKind::SlashCommands => {
                // Over HTTP the user sees the refusal's text; show it here too.
                Answer::ephemeral(opkit::mrkdwn!(
                    "Sorry, I cannot run that: {}",
                    UserText::new(text.as_str())
                ))
                .body
                .json()
            }
            body if answer.status == StatusCode::OK => body.json(),
            _ => None,
        };
        if let Some(payload) = payload {
            ack["payload"] = payload;
        }
    }
    Some(ack)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opkit::BoxFuture;
    use opkit::clock::SystemClock;
    use opkit::config::Config;
    use opkit::job::{Job, JobQueue, QueueError, Source};

    use super::*;

    fn envelope(kind: &str, accepts_response_payload: bool) -> Envelope {
        Envelope {
            id: "env-1".into(),
            kind: EnvelopeKind::parse(kind),
            payload: json!({}),
            accepts_response_payload,
            retry_attempt: 0,
            retry_reason: String::new(),
        }
    }

    fn answer(status: u16, body: Body) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body,
        }
    }

    #[test]
    fn hello_disconnect_and_envelopes_are_told_apart() {
        assert_eq!(
            parse_frame(r#"{"type":"hello","num_connections":2,"debug_info":{}}"#),
            Frame::Hello {
                connections: Some(2)
            }
        );
        assert_eq!(
            parse_frame(r#"{"type":"disconnect","reason":"refresh_requested"}"#),
            Frame::Disconnect {
                reason: "refresh_requested".into()
            }
        );
        let Frame::Envelope(envelope) = parse_frame(
            r#"{"envelope_id":"e1","type":"events_api","payload":{"a":1},"accepts_response_payload":false,"retry_attempt":2,"retry_reason":"timeout"}"#,
        ) else {
            panic!("expected an envelope");
        };
        assert_eq!(envelope.id, "e1");
        assert_eq!(envelope.kind, EnvelopeKind::EventsApi);
        assert_eq!(envelope.payload, json!({"a": 1}));
        assert_eq!(
            (envelope.retry_attempt, envelope.retry_reason.as_str()),
            (2, "timeout")
        );
    }

    #[test]
    fn frames_that_cannot_be_handled_keep_their_envelope_id_when_they_have_one() {
        assert!(matches!(
            parse_frame("{not json"),
            Frame::Unusable {
                envelope_id: None,
                ..
            }
        ));
        assert!(matches!(
            parse_frame(r#"{"type":"slash_commands","payload":{}}"#),
            Frame::Unusable {
                envelope_id: None,
                ..
            }
        ));
        assert_eq!(
            parse_frame(r#"{"envelope_id":"e2","payload":{}}"#),
            Frame::Unusable {
                envelope_id: Some("e2".into()),
                reason: "no `type`".into()
            }
        );
    }

    #[test]
    fn a_slash_command_ack_carries_the_answer_when_slack_accepts_one() {
        // GIVEN the ingress's "Working…" answer to a slash command
        let working =
            json!({"response_type": "ephemeral", "text": "Working…", "replace_original": false});
        let accepted = Answer::ephemeral("Working…");
        // THEN the ack carries it only if the envelope accepts a response payload
        assert_eq!(
            ack(&envelope("slash_commands", true), &accepted),
            Some(json!({"envelope_id": "env-1", "payload": working}))
        );
        assert_eq!(
            ack(&envelope("slash_commands", false), &accepted),
            Some(json!({"envelope_id": "env-1"}))
        );
    }

    #[test]
    fn a_long_message_in_an_ack_is_fitted_like_every_message() {
        // GIVEN an answer carrying a reply far past Slack's limits
        let long: String = (0..300)
            .map(|i| format!("line {i:03} {}\n", "w".repeat(60)))
            .collect();
        let accepted = Answer::message(opkit::slack::Reply::text(UserText::new(long.as_str())));
        // WHEN a Socket Mode envelope that takes a response payload is acked
        let ack = ack(&envelope("slash_commands", true), &accepted).unwrap();
        // THEN the payload is the message as over HTTP: text within 4,000, the
        // whole answer in sections of at most 3,000
        let payload = &ack["payload"];
        assert_eq!(Some(payload.clone()), accepted.body.json());
        assert!(payload["text"].as_str().unwrap().chars().count() <= 4_000);
        let blocks = payload["blocks"].as_array().unwrap();
        assert!(blocks.len() > 1, "{payload}");
        for block in blocks {
            assert!(block["text"]["text"].as_str().unwrap().chars().count() <= 3_000);
        }
        assert!(long.chars().count() > 18_000);
    }

    #[test]
    fn refusals_are_acked_and_shown_to_the_user_only_for_commands() {
        let refused = answer(
            403,
            Body::Text("team T9 is not allowed to use this bot".into()),
        );
        assert_eq!(
            ack(&envelope("slash_commands", true), &refused),
            Some(json!({"envelope_id": "env-1", "payload": {
                "response_type": "ephemeral",
                "replace_original": false,
                "text": "Sorry, I cannot run that: team T9 is not allowed to use this bot",
            }}))
        );
        assert_eq!(
            ack(&envelope("interactive", true), &refused),
            Some(json!({"envelope_id": "env-1"}))
        );
        assert_eq!(
            ack(&envelope("events_api", false), &answer(200, Body::Empty)),
            Some(json!({"envelope_id": "env-1"}))
        );
    }

    #[test]
    fn a_retry_wanted_by_the_ingress_withholds_the_ack() {
        let queue_down = answer(503, Body::Text("could not queue the event; retry".into()));
        assert_eq!(ack(&envelope("events_api", false), &queue_down), None);
    }

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
        let queue = Arc::new(Recorded::default());
        let config =
            Config::from_lookup(|name| (name == "OPKIT_TEAM_IDS").then(|| team_ids.to_owned()))
                .unwrap();
        let ingress = Ingress::trusted(&config, Arc::new(SystemClock), queue.clone());
        (ingress, queue)
    }

    fn click_payload(team: &str) -> Value {
        json!({
            "type": "block_actions",
            "user": {"id": "U0001", "username": "al", "team_id": team},
            "team": {"id": team, "domain": "example"},
            "channel": {"id": "C0001", "name": "ops"},
            "container": {"type": "message", "message_ts": "1.2", "channel_id": "C0001"},
            "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
            "trigger_id": "1.2.3",
            "actions": [{"action_id": "opkit:confirm", "block_id": "b1", "type": "button",
                         "value": "p-1", "action_ts": "1795000001.000400"}]
        })
    }

    #[tokio::test]
    async fn an_interactive_envelope_is_a_typed_click_for_the_ingress() {
        // GIVEN a click on a confirm button, as an `interactive` envelope's payload
        let (ingress, queue) = ingress("");
        // WHEN it is routed
        let answer = route(
            &ingress,
            "e1",
            &EnvelopeKind::Interactive,
            click_payload("T0001"),
        )
        .await;
        // THEN the ingress queued the click, as it would over HTTP
        assert_eq!(answer, Answer::empty());
        let jobs = queue.0.lock().unwrap().clone();
        assert_eq!(jobs.len(), 1);
        assert!(matches!(
            &jobs[0].source,
            Source::Interaction { pending_id, .. } if pending_id == "p-1"
        ));
    }

    #[tokio::test]
    async fn the_team_allow_list_applies_over_the_socket_too() {
        let (ingress, queue) = ingress("T0001");
        let refused = route(
            &ingress,
            "e1",
            &EnvelopeKind::Interactive,
            click_payload("T0BAD"),
        )
        .await;
        let Some(refusal) = refused.body.json() else {
            panic!("{refused:?}");
        };
        assert_eq!(refused.status, StatusCode::OK);
        assert_eq!(
            refusal["text"],
            "Sorry, I cannot run that: workspace T0BAD is not allowed to use this bot"
        );
        assert!(queue.0.lock().unwrap().is_empty());
    }

    fn fixture(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    const CONNECT_MENTION: &str =
        include_str!("../../../../shared/opkit/tests/fixtures/slack/connect_mention.json");
    const CONNECT_CLICK: &str =
        include_str!("../../../../shared/opkit/tests/fixtures/slack/connect_click.json");
    const GRID_MENTION: &str =
        include_str!("../../../../shared/opkit/tests/fixtures/slack/grid_mention.json");

    #[tokio::test]
    async fn who_may_call_is_decided_over_the_socket_as_over_http() {
        // GIVEN the bot allowed for workspace T0001
        let (ours, queue) = ingress("T0001");
        // WHEN a member of another organisation mentions it in a shared channel
        let mention = route(
            &ours,
            "e1",
            &EnvelopeKind::EventsApi,
            fixture(CONNECT_MENTION),
        )
        .await;
        // THEN the envelope is acked (Slack must not resend it) and nothing is queued
        assert_eq!(mention, Answer::empty());
        assert_eq!(
            ack(&envelope("events_api", false), &mention),
            Some(json!({"envelope_id": "env-1"}))
        );
        // AND their click is refused
        let click = route(
            &ours,
            "e2",
            &EnvelopeKind::Interactive,
            fixture(CONNECT_CLICK),
        )
        .await;
        let Some(refusal) = click.body.json() else {
            panic!("{click:?}");
        };
        assert!(
            refusal["text"]
                .as_str()
                .unwrap()
                .contains("another organisation"),
            "{refusal}"
        );
        assert!(queue.0.lock().unwrap().is_empty());
        // AND an Enterprise Grid organisation on the list is answered on events too
        let (grid, queue) = ingress("E0001");
        let mention = route(&grid, "e3", &EnvelopeKind::EventsApi, fixture(GRID_MENTION)).await;
        assert_eq!(mention, Answer::empty());
        assert_eq!(queue.0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn payloads_that_do_not_parse_or_do_not_belong_are_refused() {
        let (ingress, queue) = ingress("");
        let cases = [
            (
                EnvelopeKind::Interactive,
                json!("not an object"),
                "`payload`",
            ),
            (
                EnvelopeKind::Interactive,
                json!({"type": "block_actions", "actions": []}),
                "`user`",
            ),
            (
                EnvelopeKind::SlashCommands,
                json!({"text": "hi"}),
                "`token`",
            ),
            (
                EnvelopeKind::EventsApi,
                json!({"type": "url_verification", "challenge": "c"}),
                "url_verification",
            ),
            (
                EnvelopeKind::Unknown("brand_new".into()),
                json!({}),
                "`brand_new`",
            ),
        ];
        for (kind, payload, named) in cases {
            let answer = route(&ingress, "e1", &kind, payload).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{kind:?}");
            let Body::Text(why) = &answer.body else {
                panic!("{answer:?}");
            };
            assert!(why.contains(named), "{kind:?}: {why}");
        }
        assert!(queue.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_rate_limit_notice_is_acked_and_nothing_else() {
        let (ingress, queue) = ingress("");
        let notice = json!({"type": "app_rate_limited", "team_id": "T0001",
                            "minute_rate_limited": 1518467820, "api_app_id": "A0001"});
        let answer = route(&ingress, "e1", &EnvelopeKind::EventsApi, notice).await;
        assert_eq!(answer, Answer::empty());
        assert!(queue.0.lock().unwrap().is_empty());
    }

    /// What Slack sends that Opkit has no part in, by envelope type
    /// (shared/opkit/tests/fixtures/slack/README.md).
    const NOT_OURS: [(&str, &str); 11] = [
        (
            "interactive",
            include_str!("../../../../shared/opkit/tests/fixtures/slack/shortcut.json"),
        ),
        (
            "interactive",
            include_str!("../../../../shared/opkit/tests/fixtures/slack/message_action.json"),
        ),
        (
            "interactive",
            include_str!("../../../../shared/opkit/tests/fixtures/slack/view_submission.json"),
        ),
        (
            "interactive",
            include_str!("../../../../shared/opkit/tests/fixtures/slack/view_closed.json"),
        ),
        (
            "interactive",
            include_str!("../../../../shared/opkit/tests/fixtures/slack/block_suggestion.json"),
        ),
        (
            "interactive",
            include_str!(
                "../../../../shared/opkit/tests/fixtures/slack/block_actions_other_app.json"
            ),
        ),
        (
            "interactive",
            include_str!("../../../../shared/opkit/tests/fixtures/slack/block_actions_stale.json"),
        ),
        (
            "events_api",
            include_str!("../../../../shared/opkit/tests/fixtures/slack/app_uninstalled.json"),
        ),
        (
            "events_api",
            include_str!("../../../../shared/opkit/tests/fixtures/slack/tokens_revoked.json"),
        ),
        (
            "events_api",
            include_str!("../../../../shared/opkit/tests/fixtures/slack/team_access_granted.json"),
        ),
        (
            "events_api",
            include_str!("../../../../shared/opkit/tests/fixtures/slack/grid_app_uninstalled.json"),
        ),
    ];

    #[tokio::test]
    async fn every_envelope_opkit_has_no_part_in_is_acked_and_runs_nothing() {
        let (ingress, queue) = ingress("T0001,E0001");
        for (kind, payload) in NOT_OURS {
            // GIVEN the payload as Slack frames it, with a response payload accepted
            let frame = json!({"envelope_id": "e9", "type": kind, "payload": fixture(payload),
                               "accepts_response_payload": true})
            .to_string();
            let Frame::Envelope(mut envelope) = parse_frame(&frame) else {
                panic!("{frame}");
            };
            // WHEN it is routed
            let taken = std::mem::take(&mut envelope.payload);
            let answer = route(&ingress, "e9", &envelope.kind, taken).await;
            // THEN it is acked with nothing but its id
            assert_eq!(
                ack(&envelope, &answer),
                Some(json!({"envelope_id": "e9"})),
                "{kind}: {payload}"
            );
        }
        assert!(queue.0.lock().unwrap().is_empty());
    }

    #[test]
    fn an_envelope_over_its_routes_limit_is_acked_unread() {
        // GIVEN a slash command envelope just over the commands route's limit
        let text = "x".repeat(Route::Commands.max_body() + ENVELOPE_OVERHEAD);
        let frame = json!({"envelope_id": "e5", "type": "slash_commands",
                           "payload": {"text": text}})
        .to_string();
        // THEN it is not handed on, but acked, so that Slack does not resend it
        assert!(matches!(
            parse_frame(&frame),
            Frame::Unusable { envelope_id: Some(ref id), ref reason }
                if id == "e5" && reason.contains("over its route's limit")
        ));
        // AND the same size is within the interactions route's limit
        let frame = json!({"envelope_id": "e6", "type": "interactive",
                           "payload": {"text": text}})
        .to_string();
        assert!(matches!(parse_frame(&frame), Frame::Envelope(_)));
    }
}
