//! The templates of declarative commands: one engine (minijinja), and one rule
//! for what a value may do in each place it lands.
//!
//! Settings (`env.NAME`) and secrets (`secret.NAME`) are trusted configuration,
//! written into the output as they are. Everything else — the arguments a user
//! typed, a service's JSON answer, any value a filter made from them — is data,
//! and the formatter gives it the form its place needs:
//!
//! | place ([`Role`]) | an argument's value |
//! |---|---|
//! | URL path | percent-encoded as one path segment (`/`, `?`, `#`, `%` encoded); `.`, `..` and an empty value refused |
//! | URL query or fragment | percent-encoded as one component (`&`, `=`, `+`, `#` encoded) |
//! | URL scheme or host | refused |
//! | header | as it is; a control character (CR, LF, …) refused |
//! | JSON body or payload | a JSON string (each string of the body is its own template; the body is built as JSON, never spliced) |
//! | reply | backticks shown as `ˋ`; the whole reply is then Slack text, escaped once ([`crate::slack::UserText`]) |
//! | Lambda function name | refused |
//!
//! The filters that would mark a value as trusted (`safe`, `escape`) are removed
//! from the engine: no template can opt an argument out of its encoding.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Where a template's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// An HTTP action's URL.
    Url,
    /// An HTTP header's value.
    Header,
    /// A string inside a JSON body or Lambda payload.
    Body,
    /// The reply shown in Slack.
    Reply,
    /// A Lambda function's name or ARN.
    Function,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Url => "url",
            Role::Header => "header",
            Role::Body => "body",
            Role::Reply => "reply",
            Role::Function => "function",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Role::Url,
            Role::Header,
            Role::Body,
            Role::Reply,
            Role::Function,
        ]
        .into_iter()
        .find(|r| r.name() == name)
    }
}

/// Opens an untrusted value in a rendered URL, until [`CLOSE`]: the URL is
/// assembled afterwards, when each value's place (path, query) is known.
const OPEN: char = '\u{E000}';
/// Closes what [`OPEN`] opened.
const CLOSE: char = '\u{E001}';

/// What stays as it is in a path segment or a query component: RFC 3986's
/// unreserved characters (`A–Z a–z 0–9 - . _ ~`); everything else is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The one engine, set up once: strict about undefined names, without the
/// filters that trust a value, and with the formatter of the table above.
fn engine() -> &'static Environment<'static> {
    static ENGINE: OnceLock<Environment<'static>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for trusting in ["safe", "escape", "e"] {
            env.remove_filter(trusting);
        }
        env.set_auto_escape_callback(|name| AutoEscape::Custom(role_name(name)));
        env.set_formatter(format_value);
        env
    })
}

/// The role's static name for a template named after it.
fn role_name(name: &str) -> &'static str {
    Role::from_name(name).map_or("reply", Role::name)
}

fn format_value(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &Value,
) -> Result<(), Error> {
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    let role = match state.auto_escape() {
        AutoEscape::Custom(name) => Role::from_name(name).unwrap_or(Role::Reply),
        _ => Role::Reply,
    };
    let trusted = value.is_safe();
    let text = value.to_string();
    let refuse = |why: &str| Err(Error::new(ErrorKind::InvalidOperation, why.to_string()));
    let write = |out: &mut minijinja::Output, s: &str| {
        out.write_str(s)
            .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
    };
    match role {
        Role::Url if trusted => write(out, &text),
        Role::Url => {
            if text.contains([OPEN, CLOSE]) {
                return refuse("a value holds characters that cannot be sent");
            }
            write(out, &format!("{OPEN}{text}{CLOSE}"))
        }
        Role::Header if text.chars().any(char::is_control) => {
            refuse("a header value cannot hold a line break or another control character")
        }
        Role::Function if !trusted => {
            refuse("a Lambda function is named by settings (env.NAME), never by an argument")
        }
        Role::Reply if !trusted => write(out, &text.replace('`', "ˋ")),
        Role::Header | Role::Body | Role::Function | Role::Reply => write(out, &text),
    }
}

/// Why a template could not be read, or could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    /// The line within the template (1 for a one-line template), if known.
    pub line: Option<usize>,
    /// What was wrong, without any value the template was given.
    pub reason: String,
}

impl TemplateError {
    fn from_engine(e: &Error) -> Self {
        let reason = match e.detail() {
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        };
        Self {
            line: e.line(),
            reason,
        }
    }

    fn new(reason: impl Into<String>) -> Self {
        Self {
            line: None,
            reason: reason.into(),
        }
    }
}

/// The names a template reads: `service`, `env.DEPLOYS_URL`, `json.version`.
pub(crate) fn names(role: Role, source: &str) -> Result<BTreeSet<String>, TemplateError> {
    let template = engine()
        .template_from_named_str(role.name(), source)
        .map_err(|e| TemplateError::from_engine(&e))?;
    Ok(template.undeclared_variables(true).into_iter().collect())
}

/// Renders `source` for `role` over `context` (a map: the arguments as plain
/// values, `env` and `secret` as maps of trusted values, and for a reply `json`
/// and `status`).
pub(crate) fn render(role: Role, source: &str, context: &Value) -> Result<String, TemplateError> {
    let rendered = engine()
        .render_named_str(role.name(), source, context)
        .map_err(|e| TemplateError::from_engine(&e))?;
    match role {
        Role::Url => assemble_url(&rendered),
        _ => Ok(rendered),
    }
}

/// A trusted value: a setting or a secret, written as it is.
pub(crate) fn trusted(value: &str) -> Value {
    Value::from_safe_string(value.to_string())
}

/// Where in a URL the text written so far ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    SchemeOrHost,
    Path,
    Query,
    Fragment,
}

fn place(so_far: &str) -> Place {
    let Some(scheme_end) = so_far.find("://") else {
        return Place::SchemeOrHost;
    };
    let after = &so_far[scheme_end + 3..];
    if after.contains('#') {
        Place::Fragment
    } else if after.contains('?') {
        Place::Query
    } else if after.contains('/') {
        Place::Path
    } else {
        Place::SchemeOrHost
    }
}

/// The URL with each untrusted value encoded for its place.
fn assemble_url(rendered: &str) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(rendered.len());
    let mut rest = rendered;
    while let Some(open) = rest.find(OPEN) {
        out.push_str(&rest[..open]);
        let value_start = open + OPEN.len_utf8();
        let close = rest[value_start..]
            .find(CLOSE)
            .ok_or_else(|| TemplateError::new("a value holds characters that cannot be sent"))?;
        let value = &rest[value_start..value_start + close];
        match place(&out) {
            Place::SchemeOrHost => {
                return Err(TemplateError::new(
                    "an argument cannot be part of a URL's scheme or host: put it in the path \
                     or the query",
                ));
            }
            Place::Path if matches!(value, "" | "." | "..") => {
                return Err(TemplateError::new(format!(
                    "`{value}` cannot be a part of a URL's path"
                )));
            }
            Place::Path | Place::Query | Place::Fragment => {
                out.extend(utf8_percent_encode(value, COMPONENT));
            }
        }
        rest = &rest[value_start + close + CLOSE.len_utf8()..];
    }
    out.push_str(rest);
    let url = reqwest::Url::parse(&out)
        .map_err(|e| TemplateError::new(format!("the URL is not valid: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TemplateError::new(
            "the URL must start with http:// or https://",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(arg: &str) -> Value {
        Value::from_iter([
            ("arg".to_string(), Value::from(arg)),
            (
                "env".to_string(),
                Value::from_iter([(
                    "BASE".to_string(),
                    trusted("https://deploys.example.com/api"),
                )]),
            ),
        ])
    }

    #[test]
    fn an_argument_in_a_path_is_one_segment_whatever_it_holds() {
        let url = "{{ env.BASE }}/services/{{ arg }}/version";
        assert_eq!(
            render(Role::Url, url, &ctx("../admin?x=1&y")).unwrap(),
            "https://deploys.example.com/api/services/..%2Fadmin%3Fx%3D1%26y/version"
        );
        assert_eq!(
            render(Role::Url, url, &ctx("a/b#c %2F")).unwrap(),
            "https://deploys.example.com/api/services/a%2Fb%23c%20%252F/version"
        );
        for dots in ["..", ".", ""] {
            let err = render(Role::Url, url, &ctx(dots)).unwrap_err();
            assert!(err.reason.contains("path"), "{dots}: {err:?}");
        }
    }

    #[test]
    fn an_argument_in_a_query_cannot_add_parameters() {
        let url = "{{ env.BASE }}/search?q={{ arg }}&limit=5";
        assert_eq!(
            render(Role::Url, url, &ctx("x&limit=1000#frag")).unwrap(),
            "https://deploys.example.com/api/search?q=x%26limit%3D1000%23frag&limit=5"
        );
        assert_eq!(
            render(Role::Url, url, &ctx("a+b é")).unwrap(),
            "https://deploys.example.com/api/search?q=a%2Bb%20%C3%A9&limit=5"
        );
    }

    #[test]
    fn an_argument_cannot_choose_the_host_or_the_scheme() {
        for url in [
            "https://{{ arg }}.example.com/x",
            "{{ arg }}://example.com/x",
            "https://example.com{{ arg }}",
            "{{ arg }}",
        ] {
            let err = render(Role::Url, url, &ctx("evil.com")).unwrap_err();
            assert!(err.reason.contains("scheme or host"), "{url}: {err:?}");
        }
    }

    #[test]
    fn filters_cannot_make_an_argument_trusted() {
        for trick in ["{{ arg | safe }}", "{{ arg | e }}", "{{ arg | escape }}"] {
            let url = format!("{{{{ env.BASE }}}}/x/{trick}");
            assert!(render(Role::Url, &url, &ctx("../y")).is_err(), "{trick}");
        }
        // a value made from an argument is still untrusted
        assert_eq!(
            render(Role::Url, "{{ env.BASE }}/x/{{ arg | upper }}", &ctx("a/b")).unwrap(),
            "https://deploys.example.com/api/x/A%2FB"
        );
        // and the private markers cannot be smuggled in
        assert!(render(Role::Url, "{{ env.BASE }}/x/{{ arg }}", &ctx("a\u{E001}b")).is_err());
    }

    #[test]
    fn a_header_refuses_line_breaks_and_control_characters() {
        for bad in ["x\r\nX-Admin: 1", "x\ny", "x\0", "x\u{7f}"] {
            let err = render(Role::Header, "Bearer {{ arg }}", &ctx(bad)).unwrap_err();
            assert!(err.reason.contains("control character"), "{bad:?}: {err:?}");
        }
        assert_eq!(
            render(Role::Header, "Bearer {{ arg }}", &ctx("a b:c")).unwrap(),
            "Bearer a b:c"
        );
    }

    #[test]
    fn a_reply_cannot_close_a_code_span_and_a_function_is_not_an_argument() {
        assert_eq!(
            render(Role::Reply, "runs `{{ arg }}`", &ctx("1` <!channel>")).unwrap(),
            "runs `1ˋ <!channel>`",
            "escaping &, < and > is the reply's own step (UserText)"
        );
        assert!(render(Role::Function, "fn-{{ arg }}", &ctx("x")).is_err());
        assert_eq!(
            render(Role::Function, "{{ env.BASE }}", &ctx("x")).unwrap(),
            "https://deploys.example.com/api"
        );
    }

    #[test]
    fn names_lists_what_a_template_reads() {
        let found = names(Role::Url, "{{ env.A }}/{{ service }}?{{ secret.T }}").unwrap();
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            ["env.A", "secret.T", "service"]
        );
        let err = names(Role::Reply, "line\n{{ oops").unwrap_err();
        assert_eq!(err.line, Some(2), "{err:?}");
    }
}
