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
pub(super) const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What is encoded in a setting or secret in a URL's path: what would end the
/// path (`?`, `#`) and what a URL cannot hold as it is (controls, space, `"`,
/// `<`, `>`, `` ` ``, `{`, `}`; non-ASCII always) — WHATWG URL's path
/// percent-encode set, so a URL parser leaves the result as it is. `/` stays: a
/// base path may have several segments.
pub(super) const TRUSTED_PATH: &AsciiSet = &percent_encoding::CONTROLS
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
