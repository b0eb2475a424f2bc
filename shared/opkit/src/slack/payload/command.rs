//! Slash commands: the form Slack POSTs to a command's Request URL, and the same
//! fields as JSON in a Socket Mode `slash_commands` envelope.
//!
//! Source: <https://docs.slack.dev/interactivity/implementing-slash-commands>.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::form::Form;
use super::{Org, Origin, PayloadError, UserOrg};

/// A slash command invocation, with every field Slack documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashCommand {
    /// The deprecated verification token (requests are checked by signature instead).
    pub token: String,
    /// The workspace the command was run in.
    pub team_id: String,
    /// The workspace's subdomain.
    pub team_domain: String,
    /// The Enterprise Grid organisation, if any.
    pub enterprise_id: Option<String>,
    /// The Enterprise Grid organisation's name, if any.
    pub enterprise_name: Option<String>,
    /// The conversation the command was run in.
    pub channel_id: String,
    /// The conversation's name (`directmessage` or `privategroup` for those kinds).
    pub channel_name: String,
    /// Who ran the command.
    pub user_id: String,
    /// Their (deprecated) user name.
    pub user_name: String,
    /// The command, with its slash: `/opkit`.
    pub command: String,
    /// Everything after the command; may be empty.
    pub text: String,
    /// Where to post up to five replies within 30 minutes.
    pub response_url: String,
    /// Opens a modal; expires 3 seconds after the command.
    pub trigger_id: String,
    /// The Slack app that received the command.
    pub api_app_id: Option<String>,
    /// Whether the app is installed org-wide on Enterprise Grid.
    pub is_enterprise_install: Option<bool>,
}

/// Every field [`SlashCommand`] reads, for [`Form::from_json`].
const FIELDS: [&str; 15] = [
    "token",
    "team_id",
    "team_domain",
    "enterprise_id",
    "enterprise_name",
    "channel_id",
    "channel_name",
    "user_id",
    "user_name",
    "command",
    "text",
    "response_url",
    "trigger_id",
    "api_app_id",
    "is_enterprise_install",
];

impl SlashCommand {
    /// Parses an `application/x-www-form-urlencoded` slash command body.
    ///
    /// Unknown fields are ignored (Slack adds fields over time); a missing or repeated
    /// field is an error naming it.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        Self::from_form(&mut Form::parse(body)?)
    }

    /// Reads a Socket Mode `slash_commands` envelope's `payload`: a JSON object with
    /// the form's fields, as strings (`"is_enterprise_install": "false"` included;
    /// a JSON boolean or number is read as its text, `null` as absent). The rules are
    /// the form's: unknown fields are ignored, and a missing one is an error naming it.
    ///
    /// Source: <https://docs.slack.dev/apis/events-api/using-socket-mode>.
    pub fn from_json(payload: Value) -> Result<Self, PayloadError> {
        Self::from_form(&mut Form::from_json(&payload, &FIELDS)?)
    }

    /// Who is calling. A slash command names one workspace, `team_id` (with
    /// `enterprise_id` on Enterprise Grid): the one the command was run from, whose
    /// installation of the app received it. It is both the installation and the
    /// user's side, so the allow-list decides.
    ///
    /// Source: <https://docs.slack.dev/interactivity/implementing-slash-commands>.
    pub fn origin(&self) -> Origin {
        let enterprise = self.enterprise_id.as_deref();
        Origin {
            installation: Org::new(Some(&self.team_id), enterprise),
            user: UserOrg::from_fields([Some(self.team_id.as_str()), enterprise]),
            shared_externally: None,
        }
    }

    /// Fields Slack always sends with content are `non_empty`; the others may be
    /// sent empty.
    fn from_form(form: &mut Form) -> Result<Self, PayloadError> {
        Ok(Self {
            token: form.required("token")?,
            team_id: form.non_empty("team_id")?,
            team_domain: form.required("team_domain")?,
            enterprise_id: form.optional("enterprise_id"),
            enterprise_name: form.optional("enterprise_name"),
            channel_id: form.non_empty("channel_id")?,
            channel_name: form.required("channel_name")?,
            user_id: form.non_empty("user_id")?,
            user_name: form.required("user_name")?,
            command: form.non_empty("command")?,
            text: form.required("text")?,
            response_url: form.non_empty("response_url")?,
            trigger_id: form.non_empty("trigger_id")?,
            api_app_id: form.optional("api_app_id"),
            is_enterprise_install: form.optional_bool("is_enterprise_install")?,
        })
    }
}

/// What arrives at the slash command endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "built once per request and matched at once; a Box buys nothing"
)]
pub enum CommandRequest {
    /// Slack checking the endpoint's certificate (`ssl_check=1`); answer 200, do nothing.
    SslCheck,
    /// A user ran a command.
    Command(SlashCommand),
}

impl CommandRequest {
    /// The longest body [`CommandRequest::is_ssl_check`] reads: Slack's check is two
    /// short fields (`ssl_check=1&token=` and a 24-character verification token).
    pub const SSL_CHECK_MAX: usize = 256;

    /// Whether `body` is exactly Slack's SSL check: the form `ssl_check=1&token=…`
    /// and nothing else, at most [`CommandRequest::SSL_CHECK_MAX`] bytes.
    ///
    /// Slack sends it **unsigned** to a slash command's Request URL, to check the
    /// certificate when the URL is set, and expects a 200
    /// (<https://docs.slack.dev/interactivity/implementing-slash-commands>, "SSL
    /// check"). The ingress answers it before checking signatures, so this shape,
    /// and only this shape, passes: another field, a repeated one, a `ssl_check`
    /// other than `1` or a longer body is not a check, and must be signed like any
    /// request.
    pub fn is_ssl_check(body: &[u8]) -> bool {
        if body.len() > Self::SSL_CHECK_MAX {
            return false;
        }
        let Ok(form) = Form::parse(body) else {
            return false;
        };
        form.len() == 2
            && form.get("ssl_check") == Some("1")
            && form.get("token").is_some_and(|token| !token.is_empty())
    }

    /// Parses a slash command endpoint's body, recognising Slack's SSL check.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let mut form = Form::parse(body)?;
        if form.get("ssl_check") == Some("1") {
            return Ok(Self::SslCheck);
        }
        SlashCommand::from_form(&mut form).map(Self::Command)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const COMMAND_BODY: &str = "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&enterprise_id=E0001&enterprise_name=Globular%20Construct%20Inc&channel_id=C2147483705&channel_name=test&user_id=U2147483697&user_name=Steve&command=%2Fweather&text=94070&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678&trigger_id=13345224609.738474920.8088930838d88f008e0&api_app_id=A123456&is_enterprise_install=false";

    fn form_without(field: &str) -> String {
        COMMAND_BODY
            .split('&')
            .filter(|pair| !pair.starts_with(&format!("{field}=")))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn form_with(field: &str, value: &str) -> String {
        format!("{}&{field}={value}", form_without(field))
    }

    #[test]
    fn slash_command_parses_every_documented_field() {
        // GIVEN Slack's documented example body
        // WHEN it is parsed
        let command = SlashCommand::parse(COMMAND_BODY.as_bytes()).unwrap();
        // THEN every field is decoded
        assert_eq!(
            command,
            SlashCommand {
                token: "gIkuvaNzQIHg97ATvDxqgjtO".into(),
                team_id: "T0001".into(),
                team_domain: "example".into(),
                enterprise_id: Some("E0001".into()),
                enterprise_name: Some("Globular Construct Inc".into()),
                channel_id: "C2147483705".into(),
                channel_name: "test".into(),
                user_id: "U2147483697".into(),
                user_name: "Steve".into(),
                command: "/weather".into(),
                text: "94070".into(),
                response_url: "https://hooks.slack.com/commands/1234/5678".into(),
                trigger_id: "13345224609.738474920.8088930838d88f008e0".into(),
                api_app_id: Some("A123456".into()),
                is_enterprise_install: Some(false),
            }
        );
    }

    #[test]
    fn optional_fields_may_be_absent_or_empty() {
        // GIVEN a body without enterprise fields and with an empty app id
        let body = form_with("api_app_id", "");
        let body = body
            .split('&')
            .filter(|p| !p.starts_with("enterprise_") && !p.starts_with("is_enterprise"))
            .collect::<Vec<_>>()
            .join("&");
        // WHEN it is parsed
        let command = SlashCommand::parse(body.as_bytes()).unwrap();
        // THEN they are None
        assert_eq!(command.enterprise_id, None);
        assert_eq!(command.enterprise_name, None);
        assert_eq!(command.api_app_id, None);
        assert_eq!(command.is_enterprise_install, None);
    }

    #[test]
    fn empty_text_is_allowed() {
        let command = SlashCommand::parse(form_with("text", "").as_bytes()).unwrap();
        assert_eq!(command.text, "");
    }

    #[test]
    fn text_keeps_plus_as_space_and_percent_escapes() {
        let body = form_with("text", "queue+join+%22perf%22+%26+more");
        let command = SlashCommand::parse(body.as_bytes()).unwrap();
        assert_eq!(command.text, "queue join \"perf\" & more");
    }

    #[test]
    fn each_missing_required_field_is_named() {
        for field in [
            "token",
            "team_id",
            "team_domain",
            "channel_id",
            "channel_name",
            "user_id",
            "user_name",
            "command",
            "text",
            "response_url",
            "trigger_id",
        ] {
            // GIVEN a body without that field
            let body = form_without(field);
            // WHEN it is parsed
            let error = SlashCommand::parse(body.as_bytes()).unwrap_err();
            // THEN the error names it
            assert!(
                matches!(error, PayloadError::MissingField { field: f } if f == field),
                "{field}: {error}"
            );
            assert!(error.to_string().contains(field));
        }
    }

    #[test]
    fn empty_identity_field_is_missing() {
        let error = SlashCommand::parse(form_with("user_id", "").as_bytes()).unwrap_err();
        assert!(matches!(
            error,
            PayloadError::MissingField { field: "user_id" }
        ));
    }

    #[test]
    fn repeated_field_is_refused() {
        // GIVEN a body that names the user twice (a smuggling attempt)
        let body = format!("{COMMAND_BODY}&user_id=U0ADMIN");
        // WHEN it is parsed
        let error = SlashCommand::parse(body.as_bytes()).unwrap_err();
        // THEN it is refused, naming the field
        assert!(matches!(error, PayloadError::DuplicateField { ref field } if field == "user_id"));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(matches!(
            SlashCommand::parse(b""),
            Err(PayloadError::EmptyBody)
        ));
        assert!(matches!(
            SlashCommand::parse(b"token=\xff\xfe"),
            Err(PayloadError::NotUtf8)
        ));
        assert!(matches!(
            SlashCommand::parse(br#"{"token":"x"}"#),
            Err(PayloadError::MissingField { field: "token" })
        ));
    }

    #[test]
    fn invalid_enterprise_install_flag_is_refused() {
        let body = form_with("is_enterprise_install", "maybe");
        let error = SlashCommand::parse(body.as_bytes()).unwrap_err();
        assert!(matches!(
            error,
            PayloadError::InvalidField {
                field: "is_enterprise_install",
                ..
            }
        ));
    }

    #[test]
    fn ssl_check_is_recognised() {
        // GIVEN Slack's SSL check, which has no command fields
        let body = b"ssl_check=1&token=gIkuvaNzQIHg97ATvDxqgjtO";
        // WHEN it arrives at the command endpoint
        let request = CommandRequest::parse(body).unwrap();
        // THEN it is an SSL check, not a malformed command
        assert_eq!(request, CommandRequest::SslCheck);
    }

    #[test]
    fn only_the_exact_shape_of_slacks_ssl_check_is_one_unsigned() {
        // Slack's check, in either order of its two fields
        for body in [
            "ssl_check=1&token=gIkuvaNzQIHg97ATvDxqgjtO",
            "token=gIkuvaNzQIHg97ATvDxqgjtO&ssl_check=1",
        ] {
            assert!(CommandRequest::is_ssl_check(body.as_bytes()), "{body}");
        }
        // Anything more, less or else must be signed like a command
        let command_with_check = format!("ssl_check=1&{COMMAND_BODY}");
        let long = format!("ssl_check=1&token={}", "x".repeat(300));
        for body in [
            command_with_check.as_str(),
            "ssl_check=1",
            "ssl_check=1&token=",
            "ssl_check=0&token=x",
            "ssl_check=1&token=x&user_id=UADMIN",
            "ssl_check=1&ssl_check=1&token=x",
            "ssl_check=1&token=x&token=y",
            "%%%",
            "",
            long.as_str(),
        ] {
            assert!(!CommandRequest::is_ssl_check(body.as_bytes()), "{body}");
        }
    }

    #[test]
    fn command_request_wraps_a_slash_command() {
        let request = CommandRequest::parse(COMMAND_BODY.as_bytes()).unwrap();
        assert!(matches!(request, CommandRequest::Command(c) if c.command == "/weather"));
    }

    #[test]
    fn ssl_check_other_than_one_is_a_command_request() {
        let error = CommandRequest::parse(b"ssl_check=0&token=x").unwrap_err();
        assert!(matches!(
            error,
            PayloadError::MissingField { field: "team_id" }
        ));
    }

    #[test]
    fn a_command_is_from_its_workspace_and_organisation() {
        let grid = SlashCommand::parse(include_bytes!(
            "../../../tests/fixtures/slack/grid_command.form"
        ))
        .unwrap();
        let origin = grid.origin();
        assert_eq!(origin.installation, Org::new(Some("T0001"), Some("E0001")));
        let ids = ["T0001", "E0001"].map(|id| crate::ids::TeamId::parse(id).unwrap());
        assert_eq!(origin.user, UserOrg::Named(ids.to_vec()));
    }

    #[test]
    fn socket_payloads_are_read_like_the_http_form() {
        // GIVEN a Socket Mode payload as Slack sends it: strings, even for booleans
        let payload = json!({
            "token": "t", "team_id": "T1", "team_domain": "d", "enterprise_id": "",
            "channel_id": "C1", "channel_name": "ops", "user_id": "U1", "user_name": "u",
            "command": "/opkit", "text": "queue join perf",
            "response_url": "https://hooks.slack.com/commands/1", "trigger_id": "1.2.3",
            "api_app_id": "A1", "is_enterprise_install": "false", "brand_new": {"a": 1}
        });
        // WHEN it is read
        let command = SlashCommand::from_json(payload.clone()).unwrap();
        // THEN it is the command the HTTP route would have seen
        assert_eq!(command.text, "queue join perf");
        assert_eq!(command.enterprise_id, None);
        assert_eq!(command.is_enterprise_install, Some(false));
        // AND JSON booleans and nulls are read as the form's text and absence
        let mut typed = payload.clone();
        typed["is_enterprise_install"] = json!(true);
        typed["api_app_id"] = Value::Null;
        let command = SlashCommand::from_json(typed).unwrap();
        assert_eq!(command.is_enterprise_install, Some(true));
        assert_eq!(command.api_app_id, None);
    }

    #[test]
    fn socket_payloads_with_missing_fields_or_odd_shapes_are_named() {
        let mut missing = json!({"token": "t", "team_id": "T1"});
        assert!(matches!(
            SlashCommand::from_json(missing.clone()).unwrap_err(),
            PayloadError::MissingField {
                field: "team_domain"
            }
        ));
        missing["team_id"] = json!("");
        assert!(matches!(
            SlashCommand::from_json(missing.clone()).unwrap_err(),
            PayloadError::MissingField { field: "team_id" }
        ));
        let error = SlashCommand::from_json(json!({"text": ["a"]})).unwrap_err();
        assert!(
            matches!(error, PayloadError::InvalidField { field: "text", .. }),
            "{error}"
        );
        let error = SlashCommand::from_json(json!("text=hi")).unwrap_err();
        assert!(
            matches!(
                error,
                PayloadError::InvalidField {
                    field: "payload",
                    ..
                }
            ),
            "{error}"
        );
    }
}
