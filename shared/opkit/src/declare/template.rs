//! The templates of declarative commands: one engine (minijinja), and one rule
//! for what a value may do in each place it lands.
//!
//! Settings (`env.NAME`) and secrets (`secret.NAME`) are trusted configuration:
//! they may build a URL's scheme, host and path (a base URL, a webhook URL kept
//! as a secret), a header, a body. Everything else — the arguments a user typed,
//! a service's JSON answer, any value a filter made from them — is data, and the
//! formatter gives it the form its place needs:
//!
//! | place ([`Role`]) | an argument's value | a setting's or secret's value |
//! |---|---|---|
//! | URL scheme or host | refused | as it is |
//! | URL path | percent-encoded as one path segment (`/`, `?`, `#`, `%` encoded); `.`, `..` and an empty value refused | as it is but for `?`, `#`, space, quotes and non-ASCII, encoded (it may add segments; it cannot start the query) |
//! | URL query or fragment (after the first `?`) | percent-encoded as one component (`&`, `=`, `+`, `#`, `/`, `%` encoded) | the same: one component |
//! | header | as it is; a control character (CR, LF, …) refused | as it is |
//! | JSON body or payload | a JSON string (each string of the body is its own template; the body is built as JSON, never spliced) | the same |
//! | reply | backticks shown as `ˋ`; the whole reply is then Slack text, escaped once ([`crate::slack::UserText`]) | settings as they are; secrets refused at load |
//! | Lambda function name | refused | as it is |
//!
//! A value in a URL's query is one value whatever its source: a token such as
//! `a+b/c=` (base64) in `?key={{ secret.KEY }}` arrives as the service's `key`,
//! whole, and cannot end the query or start a fragment.
//!
//! The filters that would mark a value as trusted (`safe`, `escape`) are removed
//! from the engine: no template can opt an argument out of its encoding. Every
//! rendering is bounded: at most [`FUEL`] steps of the engine (a loop over a long
//! argument stops there with [`TemplateError::is_budget`]) and at most
//! [`MAX_RENDERED`] bytes of output; `namespace()`, the one way a template could
//! grow a value from one loop iteration to the next, is removed. Callers on an
//! async runtime render with [`render_blocking`], so a template at its budget
//! never holds up other work.

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
/// Opens a trusted value (a setting, a secret) in a rendered URL, until
/// [`TRUSTED_CLOSE`]: as it is in the scheme, host and path, encoded in the query.
const TRUSTED_OPEN: char = '\u{E002}';
/// Closes what [`TRUSTED_OPEN`] opened.
const TRUSTED_CLOSE: char = '\u{E003}';
/// Every marker: a value holding one is refused (it could not be told apart).
const MARKERS: [char; 4] = [OPEN, CLOSE, TRUSTED_OPEN, TRUSTED_CLOSE];

/// The most steps of the engine one rendering may take (minijinja's fuel: about
/// one per instruction; a loop's body costs a few per iteration). A reply that
/// lists a few hundred items of an answer takes some thousands; a loop nested
/// over a user's argument would take billions.
pub(crate) const FUEL: u64 = 50_000;

/// The most bytes one rendering may write (a URL, a header, one string of a
/// body, a reply). Slack shows at most 40,000 characters of a message.
pub(crate) const MAX_RENDERED: usize = 256 * 1024;

/// What stays as it is in a path segment or a query component: RFC 3986's
/// unreserved characters (`A–Z a–z 0–9 - . _ ~`); everything else is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What is encoded in a setting or secret in a URL's path: what would end the
/// path (`?`, `#`) and what a URL cannot hold as it is (controls, space, `"`,
/// `<`, `>`, `` ` ``, `{`, `}`; non-ASCII always) — WHATWG URL's path
/// percent-encode set, so a URL parser leaves the result as it is. `/` stays: a
/// base path may have several segments.
const TRUSTED_PATH: &AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

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
        // A namespace lets a loop's iterations build on each other (doubling a
        // string each time): with it, memory is not bounded by the fuel.
        env.remove_global("namespace");
        env.set_fuel(Some(FUEL));
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
        Role::Url if text.contains(MARKERS) => {
            refuse("a value holds characters that cannot be sent")
        }
        Role::Url if trusted => write(out, &format!("{TRUSTED_OPEN}{text}{TRUSTED_CLOSE}")),
        Role::Url => write(out, &format!("{OPEN}{text}{CLOSE}")),
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
    /// Whether the rendering was stopped at its budget ([`FUEL`] steps or
    /// [`MAX_RENDERED`] bytes).
    pub over_budget: bool,
}

impl TemplateError {
    fn from_engine(e: &Error) -> Self {
        if e.kind() == ErrorKind::OutOfFuel {
            return Self {
                line: e.line(),
                reason: format!(
                    "the template takes more than {FUEL} steps to render (a loop over a long \
                     argument or answer?), so it was stopped"
                ),
                over_budget: true,
            };
        }
        let reason = match e.detail() {
            // The formatter's refusals (and the engine's own operations) say
            // what was wrong; "invalid operation:" in front adds nothing.
            Some(detail) if e.kind() == ErrorKind::InvalidOperation => detail.to_string(),
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        };
        Self {
            line: e.line(),
            reason,
            over_budget: false,
        }
    }

    fn new(reason: impl Into<String>) -> Self {
        Self {
            line: None,
            reason: reason.into(),
            over_budget: false,
        }
    }

    fn too_long() -> Self {
        Self {
            line: None,
            reason: format!(
                "the template writes more than {MAX_RENDERED} bytes, so it was stopped"
            ),
            over_budget: true,
        }
    }
}

/// A writer that takes at most [`MAX_RENDERED`] bytes.
#[derive(Default)]
struct Bounded {
    out: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > MAX_RENDERED {
            self.overflowed = true;
            return Err(std::io::Error::other("output over its budget"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The names a template reads: `service`, `env.DEPLOYS_URL`, `json.version`.
///
/// # Errors
/// It does not compile, or it applies a filter or a test the engine does not
/// have (`safe`, `tojson`): the engine looks those up only when it reaches
/// them, so without this check a file with one would load and every run fail.
pub(crate) fn names(role: Role, source: &str) -> Result<BTreeSet<String>, TemplateError> {
    let template = engine()
        .template_from_named_str(role.name(), source)
        .map_err(|e| TemplateError::from_engine(&e))?;
    use minijinja::machinery::{Instruction, get_compiled_template};
    let compiled = get_compiled_template(&template);
    for code in std::iter::once(&compiled.instructions).chain(compiled.blocks.values()) {
        for idx in 0..u32::try_from(code.len()).unwrap_or(u32::MAX) {
            let (probe, kind) = match code.get(idx) {
                // A filter that applies another filter or a test named by a
                // string (`map("safe")`, `select("banana")`): that name is
                // checked as well.
                Some(Instruction::ApplyFilter(higher, argc, _))
                    if let Some((named, is_filter)) = named_by_string(code, idx, higher, *argc) =>
                {
                    if is_filter {
                        (format!("{{{{ none|{named} }}}}"), ErrorKind::UnknownFilter)
                    } else {
                        (format!("{{{{ none is {named} }}}}"), ErrorKind::UnknownTest)
                    }
                }
                Some(Instruction::ApplyFilter(name, ..)) => {
                    (format!("{{{{ none|{name} }}}}"), ErrorKind::UnknownFilter)
                }
                Some(Instruction::PerformTest(name, ..)) => {
                    (format!("{{{{ none is {name} }}}}"), ErrorKind::UnknownTest)
                }
                _ => continue,
            };
            // The engine answers whether it has the name: a name the parser
            // read is an identifier, so the probe is that one filter or test.
            if let Err(e) = engine().render_str(&probe, ())
                && e.kind() == kind
            {
                let mut refused = TemplateError::from_engine(&e);
                refused.line = code.get_line(idx);
                return Err(refused);
            }
        }
    }
    Ok(template.undeclared_variables(true).into_iter().collect())
}

/// The filter or test a higher-order filter at `idx` applies by name, when its
/// arguments are constants (each one `LoadConst` just before it): `map`'s first
/// argument names a filter, `select`/`reject`'s first a test,
/// `selectattr`/`rejectattr`'s second a test (their first is an attribute,
/// and alone it tests truth). `true` for a filter.
fn named_by_string<'a>(
    code: &'a minijinja::machinery::Instructions<'_>,
    idx: u32,
    higher: &str,
    argc: Option<u16>,
) -> Option<(&'a str, bool)> {
    use minijinja::machinery::Instruction;
    let (position, is_filter) = match higher {
        "map" => (0, true),
        "select" | "reject" => (0, false),
        "selectattr" | "rejectattr" => (1, false),
        _ => return None,
    };
    // The piped value counts as one of `argc`; the rest are the arguments.
    let args = u32::from(argc?.checked_sub(1)?);
    let first = idx.checked_sub(args)?;
    let constants: Vec<&minijinja::Value> = (first..idx)
        .map(|i| match code.get(i) {
            Some(Instruction::LoadConst(v)) => Some(v),
            _ => None,
        })
        .collect::<Option<_>>()?;
    constants
        .get(position)?
        .as_str()
        .map(|name| (name, is_filter))
}

/// Renders `source` for `role` over `context` (a map: the arguments as plain
/// values, `env` and `secret` as maps of trusted values, and for a reply `json`
/// and `status`).
///
/// Bounded ([`FUEL`], [`MAX_RENDERED`]) but not short: on an async runtime,
/// call [`render_blocking`].
pub(crate) fn render(role: Role, source: &str, context: &Value) -> Result<String, TemplateError> {
    let template = engine()
        .template_from_named_str(role.name(), source)
        .map_err(|e| TemplateError::from_engine(&e))?;
    let mut out = Bounded::default();
    let result = template.render_captured_to(context, &mut out);
    if out.overflowed {
        return Err(TemplateError::too_long());
    }
    result.map_err(|e| TemplateError::from_engine(&e))?;
    let rendered = String::from_utf8(out.out)
        .map_err(|_| TemplateError::new("the template wrote text that is not UTF-8"))?;
    match role {
        Role::Url => assemble_url(&rendered),
        _ => Ok(rendered),
    }
}

/// Runs `work` (renderings) on a thread of the runtime's blocking pool, so that a
/// template at its budget holds up no other job, ack or timer on the runtime.
///
/// # Errors
/// `work`'s; a panic in it is an error of the same type through `panicked`.
pub(crate) async fn render_blocking<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
    panicked: impl FnOnce(String) -> E,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => Err(panicked(e.to_string())),
    }
}

/// A trusted value: a setting or a secret (see the table above).
pub(crate) fn trusted(value: &str) -> Value {
    Value::from_safe_string(value.to_string())
}

/// Every form in which `secret` can leave in a request or come back in an
/// answer, to be blanked out of replies, errors, prompts and logs: as it is; as
/// one query component (how the query carries it, [`COMPONENT`]); in a path
/// ([`TRUSTED_PATH`]); with every character but letters and digits encoded; and
/// as a URL parser leaves it in a query (WHATWG URL's query percent-encode set).
///
/// A secret that is a URL (a webhook kept as a secret, whose path is its
/// credential: `https://hooks.example.com/services/T0/B0/XyZ…`) is also blanked
/// by its parts, in each of those forms: its path, query and fragment when they
/// are [`SECRET_URL_PART_MIN`] characters or more, and its password — a prompt
/// shows a call's host and path, never its whole URL.
pub(crate) fn sent_forms(secret: &str) -> Vec<String> {
    let mut forms = encoded_forms(secret);
    for part in secret_url_parts(secret) {
        forms.extend(encoded_forms(&part));
    }
    forms.retain(|f| !f.is_empty());
    forms.sort();
    forms.dedup();
    // The longest first, so that no form is blanked half by a shorter one.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms
}

/// The shortest part of a secret URL that is blanked on its own
/// ([`sent_forms`]): shorter ones (`/`, `/api`) say nothing of the secret and
/// would blank ordinary words.
pub(crate) const SECRET_URL_PART_MIN: usize = 8;

/// The parts of `secret` that carry its credential when it is an absolute URL
/// with a host: path, query, fragment (long enough to be one) and password.
fn secret_url_parts(secret: &str) -> Vec<String> {
    let Ok(url) = reqwest::Url::parse(secret.trim()) else {
        return Vec::new();
    };
    if url.host_str().is_none() {
        return Vec::new();
    }
    let mut parts: Vec<String> = [Some(url.path()), url.query(), url.fragment()]
        .into_iter()
        .flatten()
        .filter(|part| part.chars().count() >= SECRET_URL_PART_MIN)
        .map(str::to_string)
        .collect();
    parts.extend(url.password().map(str::to_string));
    // As the URL parser wrote them, and as they were typed into the secret.
    let decoded: Vec<String> = parts
        .iter()
        .filter_map(|p| percent_encoding::percent_decode_str(p).decode_utf8().ok())
        .map(|p| p.into_owned())
        .collect();
    parts.extend(decoded);
    parts
}

/// `text` as it is and in each encoding [`sent_forms`] names.
fn encoded_forms(text: &str) -> Vec<String> {
    const PARSER_QUERY: &AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'<')
        .add(b'>')
        .add(b'\'');
    let mut forms = vec![text.to_string()];
    for set in [COMPONENT, NON_ALPHANUMERIC, TRUSTED_PATH, PARSER_QUERY] {
        let form: String = utf8_percent_encode(text, set).collect();
        forms.push(form.clone());
        // Some encoders write the hex digits in lower case.
        forms.push(lower_escapes(&form));
    }
    forms
}

/// `text` with the hex digits of each `%XX` in lower case.
fn lower_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
        }
    }
    out
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

/// The URL with each value encoded for its place: an argument one path
/// segment or one query component (never the scheme or host); a setting or
/// secret as it is before the query, one query component in it.
fn assemble_url(rendered: &str) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(rendered.len());
    let mut rest = rendered;
    while let Some(open) = rest.find([OPEN, TRUSTED_OPEN]) {
        out.push_str(&rest[..open]);
        let trusted = rest[open..].starts_with(TRUSTED_OPEN);
        let (open_marker, close_marker) = if trusted {
            (TRUSTED_OPEN, TRUSTED_CLOSE)
        } else {
            (OPEN, CLOSE)
        };
        let value_start = open + open_marker.len_utf8();
        let close = rest[value_start..]
            .find(close_marker)
            .ok_or_else(|| TemplateError::new("a value holds characters that cannot be sent"))?;
        let value = &rest[value_start..value_start + close];
        match place(&out) {
            Place::SchemeOrHost if trusted => out.push_str(value),
            Place::Path if trusted => out.extend(utf8_percent_encode(value, TRUSTED_PATH)),
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
        rest = &rest[value_start + close + close_marker.len_utf8()..];
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

    /// A context whose setting and secret hold `value`.
    fn trusted_ctx(value: &str) -> Value {
        Value::from_iter([
            ("arg".to_string(), Value::from("x")),
            (
                "env".to_string(),
                Value::from_iter([
                    ("URL".to_string(), trusted("http://127.0.0.1:5056")),
                    ("V".to_string(), trusted(value)),
                ]),
            ),
            (
                "secret".to_string(),
                Value::from_iter([("T".to_string(), trusted(value))]),
            ),
        ])
    }

    #[test]
    fn a_secret_or_setting_in_a_query_is_one_value_whatever_it_holds() {
        // the defect: `tok#frag` cut the query (the rest became a fragment), and
        // `a+b&c=d` sent key="a b" and a parameter c
        let url = "{{ env.URL }}/q?key={{ secret.T }}&other=1";
        for (token, sent) in [
            ("tok#frag", "key=tok%23frag&other=1"),
            ("a+b&c=d", "key=a%2Bb%26c%3Dd&other=1"),
            ("abc\"def/x", "key=abc%22def%2Fx&other=1"),
            ("tök/x", "key=t%C3%B6k%2Fx&other=1"),
            (
                "s3cr3t TOKEN/+&=123%",
                "key=s3cr3t%20TOKEN%2F%2B%26%3D123%25&other=1",
            ),
        ] {
            let got = render(Role::Url, url, &trusted_ctx(token)).unwrap();
            assert_eq!(got, format!("http://127.0.0.1:5056/q?{sent}"), "{token}");
            let parsed = reqwest::Url::parse(&got).unwrap();
            let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
            assert_eq!(
                pairs,
                [("key".into(), token.into()), ("other".into(), "1".into())],
                "{token}: the service reads the whole token as `key`"
            );
            assert_eq!(parsed.fragment(), None, "{token}");
        }
        // a setting there is a value too; in a fragment as well
        assert_eq!(
            render(
                Role::Url,
                "{{ env.URL }}/q?a={{ env.V }}#{{ env.V }}",
                &trusted_ctx("1&b=2")
            )
            .unwrap(),
            "http://127.0.0.1:5056/q?a=1%26b%3D2#1%26b%3D2"
        );
    }

    #[test]
    fn settings_and_secrets_build_the_url_before_its_query_as_they_are() {
        // a base URL with a path, a webhook URL kept as a secret
        let ctx = trusted_ctx("https://hooks.example.com/services/T0/B0/xyz");
        assert_eq!(
            render(Role::Url, "{{ secret.T }}", &ctx).unwrap(),
            "https://hooks.example.com/services/T0/B0/xyz"
        );
        assert_eq!(
            render(
                Role::Url,
                "{{ env.URL }}/bot/{{ env.V }}?x=1",
                &trusted_ctx("a/b")
            )
            .unwrap(),
            "http://127.0.0.1:5056/bot/a/b?x=1"
        );
        // but in the path, it cannot start the query or a fragment
        assert_eq!(
            render(
                Role::Url,
                "{{ env.URL }}/t/{{ secret.T }}/x",
                &trusted_ctx("a?b#c d/é")
            )
            .unwrap(),
            "http://127.0.0.1:5056/t/a%3Fb%23c%20d/%C3%A9/x"
        );
        // and a marker in a trusted value is refused, not taken apart
        assert!(
            render(
                Role::Url,
                "{{ env.URL }}/{{ env.V }}",
                &trusted_ctx("a\u{E003}b")
            )
            .is_err()
        );
    }

    #[test]
    fn the_forms_a_secret_is_sent_in_are_all_known() {
        let secret = "s3cr3t TOKEN/+&=123";
        let forms = sent_forms(secret);
        let query = render(
            Role::Url,
            "{{ env.URL }}/q?k={{ secret.T }}",
            &trusted_ctx(secret),
        )
        .unwrap();
        let path = reqwest::Url::parse(
            &render(
                Role::Url,
                "{{ env.URL }}/{{ secret.T }}",
                &trusted_ctx(secret),
            )
            .unwrap(),
        )
        .unwrap()
        .to_string();
        for sent in [query, path] {
            assert!(
                forms.iter().any(|f| sent.contains(f.as_str())),
                "{sent} carries a form not in {forms:?}"
            );
        }
        assert!(
            forms.windows(2).all(|w| w[0].len() >= w[1].len()),
            "longest first"
        );
    }

    #[test]
    fn a_loop_over_a_long_argument_stops_at_the_budget() {
        // the defect: this took 23 s (300 characters) to days, on the runtime
        let cube = "{% for a in arg %}{% for b in arg %}{% for c in arg %}{% endfor %}{% endfor %}{% endfor %}done";
        let err = render(Role::Reply, cube, &ctx(&"a".repeat(600))).unwrap_err();
        assert!(err.over_budget, "{err:?}");
        assert!(err.reason.contains("steps"), "{err:?}");
        // a loop over a short list is well within it
        assert_eq!(render(Role::Reply, cube, &ctx("ab")).unwrap(), "done");
        let list = "{% for c in arg %}{{ c }},{% endfor %}";
        let ok = render(Role::Reply, list, &ctx(&"x".repeat(2000))).unwrap();
        assert_eq!(ok.len(), 4000);
    }

    #[test]
    fn the_output_is_bounded_and_no_value_grows_across_iterations() {
        let big = "{% for c in arg %}{{ arg }}{% endfor %}";
        let err = render(Role::Reply, big, &ctx(&"a".repeat(1000))).unwrap_err();
        assert!(err.over_budget && err.reason.contains("bytes"), "{err:?}");
        let grow = "{% set ns = namespace(x=arg) %}{% for c in arg %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}";
        let err = render(Role::Reply, grow, &ctx(&"a".repeat(64))).unwrap_err();
        assert!(err.reason.contains("namespace"), "{err:?}");
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
