//! Running a declared action: the HTTP call or the Lambda invocation, its
//! limits (a timeout, at most [`MAX_ANSWER`] bytes read; templates rendered off
//! the async runtime within their budget), and what the asker is told when it
//! fails — which command, which host, what went wrong, never the URL (a secret
//! may be in it) and never a secret in any form it was sent in.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::engine::{CommandError, Ctx};
use crate::slack::Reply;
use crate::telemetry::ErrorChain;

use super::format::{HttpSpec, LambdaSpec, Tpl};
use super::lambda::LambdaInvoker;
use super::template::{self, Role};
use super::{Bound, render_json, summary};

/// The most of an answer that is read (1 MiB): a reply shows a few fields of it.
pub const MAX_ANSWER: usize = 1024 * 1024;

/// The request an `http` action sends, built from its templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    pub method: http::Method,
    pub url: String,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub body: Option<Vec<u8>>,
}

/// Builds the request: the URL with each argument encoded for its place, each
/// header checked, the body built as JSON.
pub(crate) fn request(
    bound: &Bound,
    h: &HttpSpec,
    values: &BTreeMap<String, Option<String>>,
) -> Result<Outgoing, CommandError> {
    let ctx = bound.context(values, true, None);
    let refuse = |e: template::TemplateError| bound.refuse("cannot send that", &e.reason);
    let url = template::render(Role::Url, &h.url.source, &ctx).map_err(refuse)?;
    let mut headers = Vec::new();
    for (name, tpl) in &h.headers {
        let value = template::render(Role::Header, &tpl.source, &ctx).map_err(refuse)?;
        let mut value = http::HeaderValue::from_str(&value)
            .map_err(|_| bound.refuse("cannot send that", "a header value it cannot hold"))?;
        value.set_sensitive(true);
        headers.push((name.clone(), value));
    }
    let body = match &h.body {
        Some(body) => {
            let json = render_json(&body.value, &ctx).map_err(refuse)?;
            Some(serde_json::to_vec(&json).map_err(CommandError::internal)?)
        }
        None => None,
    };
    Ok(Outgoing {
        method: h.method.clone(),
        url,
        headers,
        body,
    })
}

/// Where a request goes, as messages may name it.
enum Destination {
    /// A URL kept as a secret starts the request's URL (a webhook: its host,
    /// path or query may each be its credential): named by the secret, with
    /// the path the template adds after it (`/{{ what }}`), if any.
    Secret { name: String, rest: String },
    /// Any other URL.
    Url(reqwest::Url),
    /// A URL that does not parse (not sent: the request fails first).
    Unparsed,
}

impl Destination {
    /// Where `url` goes: named by the secret whose value, a URL, starts it
    /// (the first such secret by name), else by the URL itself.
    fn of(bound: &Bound, url: &str) -> Self {
        let secret = bound.secrets.iter().find(|(_, value)| {
            let value = value.expose();
            !value.is_empty()
                && url.starts_with(value)
                && reqwest::Url::parse(value).is_ok_and(|u| u.host_str().is_some())
        });
        if let Some((name, value)) = secret {
            let rest = &url[value.expose().len()..];
            let rest = rest.split(['?', '#']).next().unwrap_or_default();
            return Destination::Secret {
                name: name.clone(),
                rest: rest.to_string(),
            };
        }
        reqwest::Url::parse(url).map_or(Destination::Unparsed, Destination::Url)
    }

    /// How errors name it: `the URL in secret HOOK`, or the host with its
    /// port when the URL names one (`127.0.0.1:5056` is not `127.0.0.1`).
    fn host(&self) -> String {
        match self {
            Destination::Secret { name, .. } => format!("the URL in secret {name}"),
            Destination::Url(url) => match (url.host_str(), url.port()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => host.to_string(),
                (None, _) => "the service".to_string(),
            },
            Destination::Unparsed => "the service".to_string(),
        }
    }

    /// The path after [`Destination::host`] as a prompt shows it: ` + /web`
    /// after a secret, the URL's path after a host.
    fn path(&self) -> String {
        match self {
            Destination::Secret { rest, .. } if rest.is_empty() => String::new(),
            Destination::Secret { rest, .. } => format!(" + {rest}"),
            Destination::Url(url) => url.path().to_string(),
            Destination::Unparsed => String::new(),
        }
    }
}

/// What the asker confirms: the method, where it goes and the path (not the
/// query, where a key may be; a URL kept as a secret by its name alone), a
/// secret in it redacted. The rest of the request is bound unshown
/// ([`sent_digest`]).
fn shown(bound: &Bound, out: &Outgoing) -> String {
    let to = Destination::of(bound, &out.url);
    match to {
        Destination::Unparsed => format!("call {}", out.method),
        _ => bound.redact(&format!("call {} {}{}", out.method, to.host(), to.path())),
    }
}

/// What a confirmed or approved run must call to be run at all
/// ([`Ctx::bind`]): the method, scheme, host, port and path the request was
/// built to when it was asked (a URL kept as a secret by its name, a secret in
/// it redacted; what they hold is bound unshown by [`sent_digest`]). A newer
/// version of the command that would call anything else is refused at the
/// click, naming both.
fn target(bound: &Bound, out: &Outgoing) -> String {
    let place = match Destination::of(bound, &out.url) {
        Destination::Url(url) => format!(
            "{}://{}:{}{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default()
                .map_or_else(String::new, |p| p.to_string()),
            url.path()
        ),
        secret @ Destination::Secret { .. } => format!("{}{}", secret.host(), secret.path()),
        Destination::Unparsed => "a URL that does not parse".to_string(),
    };
    bound.redact(&format!("call {} {place}", out.method))
}

/// The input a declared action binds: one name for every kind of action, so
/// that a version that now does something else (an HTTP call become a Lambda
/// invocation) is refused too.
const THE_CALL: &str = "the call";

/// What a declared action binds unshown ([`Ctx::bind_unshown`]): a digest of
/// everything it sends ([`sent_digest`]). One name for every kind of action.
const WHAT_IT_SENDS: &str =
    "what the call sends (its URL with the query, headers, body or payload)";

/// A keyed digest of everything a call sends, secrets included: `fields` (the
/// method, the URL with its query, each header's name and value, the body; or
/// a function and its payload), each length-prefixed so that no two requests
/// digest alike. Bound with [`Ctx::bind_unshown`], so that a click runs exactly
/// the request its prompt was asked for, or nothing — also where the prompt
/// shows `***` (a webhook URL kept as a secret, a tenant's secret in the path)
/// or nothing (the query, the headers, the body).
///
/// 128 bits of HMAC-SHA256, keyed with a key derived from every secret the
/// command holds (names and values). It is kept with the held request, in
/// the clear, and it cannot be turned back into a secret: HMAC-SHA256 is
/// one-way, and its key is the secrets themselves, which are not in the held
/// request. The only way from the digest to a secret is to guess every secret
/// whole and check the guess — hopeless for a credential (a webhook's token, an
/// API key), though a secret anyone could guess (a tenant's name) can be
/// checked that way by someone who reads the pending state.
fn sent_digest(bound: &Bound, fields: &[&[u8]]) -> String {
    use hmac::{KeyInit, Mac};
    use sha2::Digest;
    let mut key = sha2::Sha256::new();
    key.update(b"opkit declared call digest v1");
    for (name, secret) in &bound.secrets {
        for part in [name.as_bytes(), secret.expose().as_bytes()] {
            key.update((part.len() as u64).to_be_bytes());
            key.update(part);
        }
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key.finalize())
        .expect("HMAC takes a key of any length");
    for field in fields {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field);
    }
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// [`sent_digest`] of an HTTP request as [`send`] sends it.
fn request_digest(bound: &Bound, out: &Outgoing) -> String {
    let mut fields: Vec<&[u8]> = vec![out.method.as_str().as_bytes(), out.url.as_bytes()];
    for (name, value) in &out.headers {
        fields.push(name.as_str().as_bytes());
        fields.push(value.as_bytes());
    }
    match &out.body {
        Some(body) => fields.extend([b"body".as_slice(), body]),
        None => fields.push(b"no body"),
    }
    sent_digest(bound, &fields)
}

/// Runs `work` over the bound command off the async runtime (see
/// [`template::render_blocking`]).
async fn off_runtime<T: Send + 'static>(
    bound: &Arc<Bound>,
    work: impl FnOnce(&Bound) -> Result<T, CommandError> + Send + 'static,
) -> Result<T, CommandError> {
    let bound = bound.clone();
    template::render_blocking(
        move || work(&bound),
        |e| CommandError::internal(format!("rendering a template stopped: {e}")),
    )
    .await
}

/// The reply from `reply` over the answer, rendered off the runtime.
async fn answer(
    bound: &Arc<Bound>,
    reply: &Tpl,
    values: &BTreeMap<String, Option<String>>,
    json: serde_json::Value,
    status: u16,
) -> Result<Reply, CommandError> {
    let (reply, values) = (reply.clone(), values.clone());
    off_runtime(bound, move |b| b.reply(&reply, &values, &json, status)).await
}

pub(crate) async fn http(
    ctx: &mut Ctx<()>,
    bound: &Arc<Bound>,
    h: &HttpSpec,
    values: &BTreeMap<String, Option<String>>,
    client: &reqwest::Client,
) -> Result<Reply, CommandError> {
    let out = {
        let (h, values) = (h.clone(), values.clone());
        off_runtime(bound, move |b| request(b, &h, &values)).await?
    };
    ctx.bind(THE_CALL, target(bound, &out))?;
    ctx.bind_unshown(WHAT_IT_SENDS, request_digest(bound, &out))?;
    ctx.confirm(summary(&shown(bound, &out)))?;
    let host = Destination::of(bound, &out.url).host();
    let (status, body) = send(client, out, h.timeout, host).await.map_err(|e| {
        let reason = bound.redact(&e.to_string());
        tracing::warn!(command = %bound.spec.name, %reason, "declared http action failed");
        bound.refuse("failed", &reason)
    })?;
    if !(200..300).contains(&status) {
        let snippet = bound.redact(&first_line(&body));
        tracing::warn!(command = %bound.spec.name, status, answer = %snippet, "declared http action refused");
        let reason = if snippet.is_empty() {
            format!("the service answered HTTP {status}")
        } else {
            format!("the service answered HTTP {status}: {snippet}")
        };
        return Err(bound.refuse("failed", &reason));
    }
    let json = if h.reads_json {
        if body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|_| {
                bound.refuse(
                    "failed",
                    &format!("the service answered HTTP {status}, but not with JSON"),
                )
            })?
        }
    } else {
        serde_json::Value::Null
    };
    answer(bound, &h.reply, values, json, status).await
}

/// The first line of an answer, at most 200 characters, for an error.
fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    crate::text::one_line(text.lines().next().unwrap_or_default().trim())
}

/// Why a call got no usable answer: the host it went to and what happened —
/// never the URL, whose path or query may carry a secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("no answer from {host} within {secs}s")]
    Timeout { host: String, secs: u64 },
    #[error("the service at {host} could not be reached: {reason}")]
    Transport { host: String, reason: String },
    #[error("the answer from {host} is larger than {MAX_ANSWER} bytes")]
    TooLarge { host: String },
}

/// Sends `out` and reads its answer; errors name where it went as `host`
/// ([`Destination::host`]), never the URL.
async fn send(
    client: &reqwest::Client,
    out: Outgoing,
    timeout: std::time::Duration,
    host: String,
) -> Result<(u16, Vec<u8>), CallError> {
    let classify = |e: reqwest::Error| {
        if e.is_timeout() {
            CallError::Timeout {
                host: host.clone(),
                secs: timeout.as_secs(),
            }
        } else {
            // reqwest's text names the URL; the chain without it says what failed.
            CallError::Transport {
                host: host.clone(),
                reason: ErrorChain(&e.without_url()).to_string(),
            }
        }
    };
    let mut request = client.request(out.method, &out.url).timeout(timeout);
    for (name, value) in out.headers {
        request = request.header(name, value);
    }
    if let Some(body) = out.body {
        request = request
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    let mut response = request.send().await.map_err(classify)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(CallError::TooLarge { host });
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// Builds an invocation: the function's name and the payload, built as JSON.
fn invocation(
    bound: &Bound,
    l: &LambdaSpec,
    values: &BTreeMap<String, Option<String>>,
) -> Result<(String, Vec<u8>), CommandError> {
    let context = bound.context(values, true, None);
    let refuse = |e: template::TemplateError| bound.refuse("cannot invoke that", &e.reason);
    let function =
        template::render(Role::Function, &l.function.source, &context).map_err(refuse)?;
    let payload = match &l.payload {
        Some(p) => render_json(&p.value, &context).map_err(refuse)?,
        None => serde_json::json!({}),
    };
    let payload = serde_json::to_vec(&payload).map_err(CommandError::internal)?;
    Ok((function, payload))
}

pub(crate) async fn lambda(
    ctx: &mut Ctx<()>,
    bound: &Arc<Bound>,
    l: &LambdaSpec,
    values: &BTreeMap<String, Option<String>>,
    invoker: &dyn LambdaInvoker,
) -> Result<Reply, CommandError> {
    let (function, payload) = {
        let (l, values) = (l.clone(), values.clone());
        off_runtime(bound, move |b| invocation(b, &l, &values)).await?
    };
    ctx.bind(THE_CALL, bound.redact(&format!("invoke {function}")))?;
    ctx.bind_unshown(
        WHAT_IT_SENDS,
        sent_digest(bound, &[b"invoke", function.as_bytes(), &payload]),
    )?;
    ctx.confirm(summary(&bound.redact(&format!("invoke {function}"))))?;
    let invoked = tokio::time::timeout(l.timeout, invoker.invoke(&function, payload))
        .await
        .map_err(|_| {
            bound.refuse(
                "failed",
                &format!("no answer within {}s", l.timeout.as_secs()),
            )
        })?
        .map_err(|e| {
            let reason = bound.redact(&e);
            tracing::warn!(command = %bound.spec.name, %reason, "declared lambda action failed");
            bound.refuse("failed", &reason)
        })?;
    let json: serde_json::Value = if invoked.payload.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&invoked.payload)
            .map_err(|_| bound.refuse("failed", "the function answered, but not with JSON"))?
    };
    if let Some(kind) = &invoked.function_error {
        let message = json
            .get("errorMessage")
            .and_then(|m| m.as_str())
            .map(|m| format!(": {}", crate::text::one_line(m)))
            .unwrap_or_default();
        return Err(bound.refuse(
            "failed",
            &bound.redact(&format!("the function failed ({kind}){message}")),
        ));
    }
    answer(bound, &l.reply, values, json, invoked.status).await
}
