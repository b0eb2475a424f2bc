//! The commands file: TOML read with spans, checked into [`Spec`]s, every error
//! with its line.
//!
//! ```toml
//! [[command]]
//! name = "deploys status"            # the syntax form (one or more words)
//! aliases = ["deploy status"]        # more forms (optional)
//! usage = "<service>"                # the arguments (see usage.rs)
//! describe = "Which version of a service is deployed"
//! examples = ["deploys status web"]
//! access = [["ops"], ["admin"]]      # Opkit's alternatives; absent: everyone
//! confirm = true                     # or approval = [["lead"]]
//! gains = ["who"]                    # with approval: <@who> gains, may not approve
//! in_channel = true                  # default: only the asker sees the reply
//!
//! [command.http]                     # or [command.lambda], or command = "…"
//! method = "GET"                     # default GET (POST with a body)
//! url = "{{ env.DEPLOYS_URL }}/services/{{ service }}/version"
//! headers = { Authorization = "Bearer {{ secret.DEPLOYS_TOKEN }}" }
//! body = { service = "{{ service }}" }   # a JSON body, built as JSON
//! timeout = "10s"                    # default 10s, at most 30s
//! reply = "*{{ service }}* runs `{{ json.version }}`"
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::template::{self, Role};
use super::usage::{Kind, Usage};
use crate::access::Access;

/// Why a commands file cannot be used: where, and what is wrong. Never holds
/// a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LoadError {
    /// The file (its path, or where it was stored).
    pub origin: String,
    /// The line the problem is on, if it is on one.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

/// The longest an action may wait for its answer.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an action waits for its answer unless its `timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    command: Vec<Spanned<CommandDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandDoc {
    name: Spanned<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    usage: Option<Spanned<String>>,
    #[serde(default)]
    describe: Option<String>,
    #[serde(default)]
    examples: Vec<String>,
    #[serde(default)]
    access: Option<Spanned<Vec<Vec<String>>>>,
    #[serde(default)]
    confirm: bool,
    #[serde(default)]
    approval: Option<Spanned<Vec<Vec<String>>>>,
    #[serde(default)]
    gains: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    in_channel: bool,
    #[serde(default)]
    http: Option<Spanned<HttpDoc>>,
    #[serde(default)]
    lambda: Option<Spanned<LambdaDoc>>,
    #[serde(default)]
    command: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpDoc {
    #[serde(default)]
    method: Option<Spanned<String>>,
    url: Spanned<String>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    body: Option<Spanned<toml::Value>>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    reply: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LambdaDoc {
    function: Spanned<String>,
    #[serde(default)]
    payload: Option<Spanned<toml::Value>>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    reply: Option<Spanned<String>>,
}

/// A template and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tpl {
    pub source: String,
    pub line: usize,
}

/// A JSON body or payload whose strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonTpl {
    pub value: serde_json::Value,
    pub line: usize,
}

/// One command, checked.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// The line its `[[command]]` starts on.
    pub line: usize,
    pub name: String,
    pub aliases: Vec<String>,
    pub usage_text: String,
    pub usage: Usage,
    pub describe: String,
    pub examples: Vec<String>,
    pub access: Access,
    pub confirm: bool,
    pub approval: Option<Access>,
    /// The user arguments (`<@who>`) whose person gains from a request: like
    /// its asker, none of them may approve it (`gains = ["who"]`).
    pub gains: Vec<String>,
    pub in_channel: bool,
    pub action: ActionSpec,
    /// Settings and secrets its templates read, each with the first line that does.
    pub settings: BTreeMap<String, usize>,
    pub secrets: BTreeMap<String, usize>,
}

/// What a command does.
#[derive(Debug, Clone)]
pub(crate) enum ActionSpec {
    Http(HttpSpec),
    Lambda(LambdaSpec),
    /// Another command's text, run as the asker (and authorized as that command).
    Alias(String),
}

#[derive(Debug, Clone)]
pub(crate) struct HttpSpec {
    pub method: http::Method,
    pub url: Tpl,
    pub headers: Vec<(http::HeaderName, Tpl)>,
    pub body: Option<JsonTpl>,
    pub timeout: Duration,
    pub reply: Tpl,
    /// Whether the reply reads the answer as JSON.
    pub reads_json: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct LambdaSpec {
    pub function: Tpl,
    pub payload: Option<JsonTpl>,
    pub timeout: Duration,
    pub reply: Tpl,
}

/// Where errors are reported: the file's name and text (for lines).
struct Source<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn at(&self, line: usize, reason: impl Into<String>) -> LoadError {
        LoadError {
            origin: self.origin.to_string(),
            line: Some(line),
            reason: reason.into(),
        }
    }
}

/// Reads and checks a commands file. `origin` names it in errors.
pub(crate) fn parse(origin: &str, text: &str) -> Result<Vec<Spec>, LoadError> {
    let src = Source { origin, text };
    let doc: FileDoc = toml::from_str(text).map_err(|e| LoadError {
        origin: origin.to_string(),
        line: e.span().map(|s| src.line(s.start)),
        reason: e.message().trim().to_string(),
    })?;
    let mut specs: Vec<Spec> = Vec::new();
    for command in doc.command {
        let line = src.line(command.span().start);
        let spec = check(&src, command.into_inner(), line)?;
        if let Some(other) = specs.iter().find(|s| s.name == spec.name) {
            return Err(src.at(line, format!("`{}` is defined twice", other.name)));
        }
        specs.push(spec);
    }
    // What an alias runs is checked with every other command, built in or
    // declared, in the registry (engine::Registry::build).
    Ok(specs)
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_lowercase).collect()
}

/// A syntax form: words of ASCII letters, digits, `-` and `_`, as every
/// built-in name is. Only ASCII: a letter of another alphabet that looks like a
/// Latin one (Cyrillic `е` in `еc2 reboot`) would make a name that reads as a
/// built-in's in `help` but is another command.
fn form(src: &Source<'_>, line: usize, form: &str) -> Result<String, LoadError> {
    let words = words(form);
    let valid = !words.is_empty()
        && words.iter().all(|w| {
            w.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && w.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        });
    if !valid {
        return Err(src.at(
            line,
            format!("`{form}` is not a command name: words of ASCII letters, digits, `-` and `_`"),
        ));
    }
    Ok(words.join(" "))
}

fn read_access(
    src: &Source<'_>,
    doc: &Spanned<Vec<Vec<String>>>,
    what: &str,
) -> Result<Access, LoadError> {
    let alternatives: Vec<Vec<&str>> = doc
        .get_ref()
        .iter()
        .map(|alt| alt.iter().map(String::as_str).collect())
        .collect();
    let refs: Vec<&[&str]> = alternatives.iter().map(Vec::as_slice).collect();
    Access::parse(&refs).map_err(|e| src.at(src.line(doc.span().start), format!("`{what}`: {e}")))
}

/// `gains`: user arguments (`<@who>`) of a command with `approval`, each named
/// once. Their people gain from a request, so none of them may approve it.
fn read_gains(
    src: &Source<'_>,
    doc: &Spanned<Vec<String>>,
    usage: &Usage,
    approval: bool,
) -> Result<Vec<String>, LoadError> {
    let line = src.line(doc.span().start);
    if !approval {
        return Err(src.at(
            line,
            "`gains` names who may not approve a request: it needs `approval`",
        ));
    }
    let mut names: Vec<String> = Vec::new();
    for name in doc.get_ref() {
        let users: Vec<&str> = usage
            .params
            .iter()
            .filter(|p| p.kind == Kind::User)
            .map(|p| p.name.as_str())
            .collect();
        match usage.params.iter().find(|p| &p.name == name) {
            Some(p) if p.kind == Kind::User => {}
            found => {
                let what = match found {
                    Some(p) => format!("`{}` is not a user argument (<@{name}>)", p.shown),
                    None => format!("`{name}` is not an argument of this command"),
                };
                let known = if users.is_empty() {
                    "it has none".to_string()
                } else {
                    format!("it has: {}", users.join(", "))
                };
                return Err(src.at(
                    line,
                    format!("`gains`: {what}; `gains` names user arguments ({known})"),
                ));
            }
        }
        if names.contains(name) {
            return Err(src.at(line, format!("`gains`: `{name}` is named twice")));
        }
        names.push(name.clone());
    }
    Ok(names)
}

fn timeout(src: &Source<'_>, doc: Option<&Spanned<String>>) -> Result<Duration, LoadError> {
    let Some(doc) = doc else {
        return Ok(DEFAULT_TIMEOUT);
    };
    let line = src.line(doc.span().start);
    let parsed = crate::timespec::parse_duration(doc.get_ref())
        .map_err(|e| src.at(line, format!("`timeout`: {e}")))?
        .to_std()
        .unwrap_or(Duration::ZERO);
    if parsed.is_zero() || parsed > MAX_TIMEOUT {
        return Err(src.at(
            line,
            format!(
                "`timeout` must be more than 0s and at most {}s",
                MAX_TIMEOUT.as_secs()
            ),
        ));
    }
    Ok(parsed)
}

/// What a template may read, and what it did read.
struct Names<'a> {
    usage: &'a Usage,
    settings: BTreeMap<String, usize>,
    secrets: BTreeMap<String, usize>,
}

impl Names<'_> {
    /// Checks one template: it compiles, and reads only what `role` may.
    fn check(&mut self, src: &Source<'_>, role: Role, tpl: &Tpl) -> Result<bool, LoadError> {
        let names = template::names(role, &tpl.source).map_err(|e| {
            src.at(
                tpl.line + e.line.unwrap_or(1) - 1,
                format!("template `{}`: {}", tpl.source.trim(), e.reason),
            )
        })?;
        let mut reads_json = false;
        for name in names {
            let (head, tail) = name.split_once('.').unwrap_or((&name, ""));
            match head {
                "env" | "secret" if tail.is_empty() || tail.contains('.') => {
                    return Err(src.at(
                        tpl.line,
                        format!("`{name}`: name one setting or secret, as {head}.NAME"),
                    ));
                }
                "env" => {
                    self.settings.entry(tail.to_string()).or_insert(tpl.line);
                }
                "secret" if role == Role::Reply => {
                    return Err(src.at(
                        tpl.line,
                        format!("the reply reads `{name}`: a secret is never shown in Slack"),
                    ));
                }
                "secret" => {
                    self.secrets.entry(tail.to_string()).or_insert(tpl.line);
                }
                "json" | "status" if role == Role::Reply => reads_json |= head == "json",
                arg if self.usage.has(arg) => {
                    if role == Role::Function {
                        return Err(src.at(
                            tpl.line,
                            format!(
                                "`{arg}`: a Lambda function is named by settings (env.NAME), \
                                 never by an argument"
                            ),
                        ));
                    }
                }
                other => {
                    let known: Vec<String> =
                        self.usage.params.iter().map(|p| p.name.clone()).collect();
                    let what = match role {
                        Role::Reply => "the arguments, json, status or env.NAME",
                        _ => "the arguments, env.NAME or secret.NAME",
                    };
                    return Err(src.at(
                        tpl.line,
                        format!(
                            "`{other}` is not an argument of this command (it has: {}); a \
                             template reads {what}",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
            }
        }
        Ok(reads_json)
    }

    fn check_json(&mut self, src: &Source<'_>, json: &JsonTpl) -> Result<(), LoadError> {
        let mut result = Ok(());
        walk_strings(&json.value, &mut |s| {
            if result.is_ok() {
                let tpl = Tpl {
                    source: s.to_string(),
                    line: json.line,
                };
                result = self.check(src, Role::Body, &tpl).map(drop);
            }
        });
        result
    }
}

/// Calls `f` on every string in `value` (not on keys).
pub(crate) fn walk_strings(value: &serde_json::Value, f: &mut impl FnMut(&str)) {
    match value {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| walk_strings(v, f)),
        serde_json::Value::Object(map) => map.values().for_each(|v| walk_strings(v, f)),
        _ => {}
    }
}

fn tpl(src: &Source<'_>, doc: &Spanned<String>) -> Tpl {
    let start = doc.span().start;
    // A multi-line string drops the line break right after its opening quotes:
    // its text starts on the next line.
    let raw = src.text.get(start..).unwrap_or_default();
    let skipped = ["\"\"\"", "'''"].iter().any(|quotes| {
        raw.strip_prefix(quotes)
            .is_some_and(|rest| rest.starts_with('\n') || rest.starts_with("\r\n"))
    });
    Tpl {
        source: doc.get_ref().clone(),
        line: src.line(start) + usize::from(skipped),
    }
}

fn json(src: &Source<'_>, doc: &Spanned<toml::Value>) -> Result<JsonTpl, LoadError> {
    let line = src.line(doc.span().start);
    fn convert(v: &toml::Value) -> Result<serde_json::Value, String> {
        Ok(match v {
            toml::Value::String(s) => serde_json::Value::String(s.clone()),
            toml::Value::Integer(i) => serde_json::Value::from(*i),
            toml::Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .ok_or("a number JSON cannot hold")?,
            toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
            toml::Value::Datetime(_) => return Err("a TOML date: write it as a string".into()),
            toml::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(convert).collect::<Result<_, _>>()?)
            }
            toml::Value::Table(table) => serde_json::Value::Object(
                table
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), convert(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
    let value = convert(doc.get_ref()).map_err(|e| src.at(line, e))?;
    Ok(JsonTpl { value, line })
}

fn check(src: &Source<'_>, doc: CommandDoc, line: usize) -> Result<Spec, LoadError> {
    let name = form(src, src.line(doc.name.span().start), doc.name.get_ref())?;
    let aliases = doc
        .aliases
        .iter()
        .map(|a| form(src, line, a))
        .collect::<Result<Vec<_>, _>>()?;
    let (usage_text, usage) = match &doc.usage {
        Some(u) => (
            u.get_ref().trim().to_string(),
            Usage::parse(u.get_ref())
                .map_err(|e| src.at(src.line(u.span().start), format!("`usage`: {e}")))?,
        ),
        None => (String::new(), Usage::default()),
    };
    let access = match &doc.access {
        Some(a) => read_access(src, a, "access")?,
        None => Access::Open,
    };
    let approval = doc
        .approval
        .as_ref()
        .map(|a| read_access(src, a, "approval"))
        .transpose()?;
    if let Some(a) = &doc.approval
        && a.get_ref().is_empty()
    {
        return Err(src.at(
            src.line(a.span().start),
            "`approval = []` names nobody who may approve: no request could ever run \
             (name the approvers' roles, or `access = []` for a command nobody runs)",
        ));
    }
    if doc.confirm && approval.is_some() {
        return Err(src.at(line, "a command asks for `confirm` or `approval`, not both"));
    }
    let gains = match &doc.gains {
        Some(g) => read_gains(src, g, &usage, approval.is_some())?,
        None => Vec::new(),
    };
    let mut names = Names {
        usage: &usage,
        settings: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    let action = match (doc.http, doc.lambda, doc.command) {
        (Some(http), None, None) => {
            let http_line = src.line(http.span().start);
            let h = http.into_inner();
            let method = match &h.method {
                Some(m) => http::Method::from_bytes(m.get_ref().to_uppercase().as_bytes())
                    .ok()
                    .filter(|m| {
                        ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&m.as_str())
                    })
                    .ok_or_else(|| {
                        src.at(
                            src.line(m.span().start),
                            format!(
                                "`method`: `{}` is not one of GET, POST, PUT, PATCH, DELETE, HEAD",
                                m.get_ref()
                            ),
                        )
                    })?,
                None if h.body.is_some() => http::Method::POST,
                None => http::Method::GET,
            };
            let url = tpl(src, &h.url);
            names.check(src, Role::Url, &url)?;
            let mut headers = Vec::new();
            for (header, value) in &h.headers {
                let value = tpl(src, value);
                let name = http::HeaderName::from_bytes(header.as_bytes())
                    .ok()
                    .filter(|n| *n != http::header::HOST && *n != http::header::CONTENT_LENGTH)
                    .ok_or_else(|| {
                        src.at(
                            value.line,
                            format!("`{header}` is not a header this can set"),
                        )
                    })?;
                names.check(src, Role::Header, &value)?;
                headers.push((name, value));
            }
            let body = h.body.as_ref().map(|b| json(src, b)).transpose()?;
            if let Some(body) = &body {
                names.check_json(src, body)?;
            }
            let reply = h.reply.as_ref().map_or_else(
                || Tpl {
                    source: "Done: HTTP {{ status }}.".into(),
                    line: http_line,
                },
                |r| tpl(src, r),
            );
            let reads_json = names.check(src, Role::Reply, &reply)?;
            ActionSpec::Http(HttpSpec {
                method,
                url,
                headers,
                body,
                timeout: timeout(src, h.timeout.as_ref())?,
                reply,
                reads_json,
            })
        }
        (None, Some(lambda), None) => {
            let lambda_line = src.line(lambda.span().start);
            let l = lambda.into_inner();
            let function = tpl(src, &l.function);
            names.check(src, Role::Function, &function)?;
            let payload = l.payload.as_ref().map(|p| json(src, p)).transpose()?;
            if let Some(payload) = &payload {
                names.check_json(src, payload)?;
            }
            let reply = l.reply.as_ref().map_or_else(
                || Tpl {
                    source: "Done.".into(),
                    line: lambda_line,
                },
                |r| tpl(src, r),
            );
            names.check(src, Role::Reply, &reply)?;
            ActionSpec::Lambda(LambdaSpec {
                function,
                payload,
                timeout: timeout(src, l.timeout.as_ref())?,
                reply,
            })
        }
        (None, None, Some(target)) => {
            let target_line = src.line(target.span().start);
            if !usage.params.is_empty() {
                return Err(src.at(
                    target_line,
                    "an alias runs its command with fixed arguments: it takes no `usage`",
                ));
            }
            if doc.confirm || approval.is_some() {
                return Err(src.at(
                    target_line,
                    "an alias has no `confirm` or `approval` of its own: the command it runs \
                     asks for its own",
                ));
            }
            let text = target.get_ref().trim();
            if text.is_empty() || text.contains(['{', '}']) || text.contains(char::is_control) {
                return Err(src.at(
                    target_line,
                    "`command` is a command as typed, with fixed arguments (no template)",
                ));
            }
            ActionSpec::Alias(text.to_string())
        }
        _ => {
            return Err(src.at(
                line,
                format!(
                    "`{name}` needs exactly one action: [command.http], [command.lambda] or \
                     command = \"…\""
                ),
            ));
        }
    };
    let (settings, secrets) = (names.settings, names.secrets);
    Ok(Spec {
        line,
        name,
        aliases,
        usage_text,
        usage,
        describe: doc.describe.unwrap_or_default(),
        examples: doc.examples,
        access,
        confirm: doc.confirm,
        approval,
        gains,
        in_channel: doc.in_channel,
        action,
        settings,
        secrets,
    })
}

/// Every setting and secret the specs read.
pub(crate) fn referenced(specs: &[Spec]) -> (BTreeSet<String>, BTreeSet<String>) {
    let settings = specs
        .iter()
        .flat_map(|s| s.settings.keys().cloned())
        .collect();
    let secrets = specs
        .iter()
        .flat_map(|s| s.secrets.keys().cloned())
        .collect();
    (settings, secrets)
}
