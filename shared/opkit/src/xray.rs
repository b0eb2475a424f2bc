//! Each command's correlation id as an AWS X-Ray annotation.
//!
//! There is no official X-Ray SDK for Rust, and the function's own segment is
//! Lambda's: what a function adds is a *subsegment*, sent as one UDP datagram to
//! the X-Ray daemon Lambda runs beside it. [`XrayLayer`] is a `tracing` layer that
//! turns every span carrying a `correlation_id` field (the worker's `command`
//! span, [`crate::engine::Bot::handle`]) into one subsegment of the invocation's
//! trace, named after the span, timed from its creation to its close, with the
//! correlation id as the annotation `correlation_id` — so the X-Ray console finds
//! a command's trace with `annotation.correlation_id = "…"`.
//!
//! The rules, from the X-Ray developer guide:
//!
//! - the trace comes from the invocation's trace header, `_X_AMZN_TRACE_ID`
//!   (`Root=1-…;Parent=…;Sampled=1`): the subsegment's `trace_id` is `Root`, its
//!   `parent_id` is `Parent` (Lambda's function segment), and nothing is sent
//!   unless `Sampled=1` ("Tracing header", "AWS Lambda and AWS X-Ray");
//! - a subsegment sent on its own has `type: "subsegment"`, a 16-hex-digit `id`,
//!   `start_time` and `end_time` in epoch seconds ("AWS X-Ray segment documents",
//!   "Subsegments");
//! - annotation keys are letters, digits and underscores; values strings, numbers
//!   or booleans, indexed for filter expressions ("Annotations");
//! - the daemon listens at `AWS_XRAY_DAEMON_ADDRESS` (`host:port`, or
//!   `udp:host:port tcp:host:port`); each datagram is the header
//!   `{"format": "json", "version": 1}`, a newline, and one segment document of at
//!   most 64 KB ("Sending segment documents to the X-Ray daemon").
//!
//! Only the worker and the expiry install it ([`crate::telemetry::init_traced_json_logs`]):
//! the ingress runs no command, and stays as small as it was.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The variable Lambda sets to the invocation's trace header.
pub const TRACE_HEADER_VAR: &str = "_X_AMZN_TRACE_ID";
/// The variable naming the X-Ray daemon's address.
pub const DAEMON_ADDRESS_VAR: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// The header line of every datagram sent to the daemon.
pub const DAEMON_HEADER: &str = r#"{"format": "json", "version": 1}"#;
/// The span field whose value becomes the annotation.
pub const CORRELATION_FIELD: &str = "correlation_id";

/// The parts of an X-Ray trace header a subsegment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    /// `Root`: the trace id, `1-<8 hex>-<24 hex>`.
    pub root: String,
    /// `Parent`: the id of the segment this work belongs to (Lambda's function
    /// segment), 16 hex digits.
    pub parent: String,
    /// `Sampled=1`: the trace is recorded.
    pub sampled: bool,
}

impl TraceHeader {
    /// Reads `Root=…;Parent=…;Sampled=…` (other parts, such as `Lineage`, are
    /// ignored); `None` without a `Root` or a `Parent`.
    pub fn parse(header: &str) -> Option<Self> {
        let (mut root, mut parent, mut sampled) = (None, None, false);
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", v)) if !v.is_empty() => root = Some(v.to_owned()),
                Some(("Parent", v)) if !v.is_empty() => parent = Some(v.to_owned()),
                Some(("Sampled", v)) => sampled = v == "1",
                _ => {}
            }
        }
        Some(Self {
            root: root?,
            parent: parent?,
            sampled,
        })
    }
}

/// The daemon's UDP address from `AWS_XRAY_DAEMON_ADDRESS`'s value: `host:port`,
/// or the `udp:` one of `tcp:host:port udp:host:port` (either order).
pub fn daemon_address(value: &str) -> Option<SocketAddr> {
    let words: Vec<&str> = value.split_whitespace().collect();
    let udp = match words.as_slice() {
        [one] => one.strip_prefix("udp:").unwrap_or(one),
        many => many.iter().find_map(|w| w.strip_prefix("udp:"))?,
    };
    udp.to_socket_addrs().ok()?.next()
}

/// One subsegment, as the daemon receives it: [`DAEMON_HEADER`], a newline, and
/// the document. `start` and `end` are epoch seconds; `id` 16 hex digits.
pub fn datagram(
    header: &TraceHeader,
    name: &str,
    id: &str,
    start: f64,
    end: f64,
    annotations: &[(&str, &str)],
) -> String {
    let annotations: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(key, value)| ((*key).to_owned(), json!(value)))
        .collect();
    let document = json!({
        "name": name,
        "id": id,
        "trace_id": header.root,
        "parent_id": header.parent,
        "type": "subsegment",
        "start_time": start,
        "end_time": end,
        "annotations": annotations,
    });
    format!("{DAEMON_HEADER}\n{document}")
}

/// A fresh subsegment id: 64 random bits as 16 hex digits.
fn new_id() -> String {
    let mut bytes = [0u8; 8];
    // The OS's generator; if it ever fails, the clock still gives a usable id.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = now().to_bits().to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Where the trace header comes from: the environment in a Lambda, a fixed value
/// in tests.
type HeaderSource = Box<dyn Fn() -> Option<String> + Send + Sync>;

/// The `tracing` layer that sends a subsegment for each span with a
/// [`CORRELATION_FIELD`] (see the module). Install it with a filter that passes
/// only those spans ([`XrayLayer::wants`]), so that nothing else is enabled for it.
pub struct XrayLayer {
    socket: UdpSocket,
    daemon: SocketAddr,
    header: HeaderSource,
}

impl std::fmt::Debug for XrayLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XrayLayer")
            .field("daemon", &self.daemon)
            .finish_non_exhaustive()
    }
}

/// What the layer keeps on a span between its creation and its close.
struct Open {
    trace: TraceHeader,
    start: f64,
    correlation_id: String,
}

impl XrayLayer {
    /// A layer sending to `daemon`, reading the trace header from `header` when a
    /// span opens; `None` if no UDP socket can be opened.
    pub fn new(
        daemon: SocketAddr,
        header: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Option<Self> {
        let local: SocketAddr = if daemon.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).ok()?;
        Some(Self {
            socket,
            daemon,
            header: Box::new(header),
        })
    }

    /// The layer for a Lambda function: the daemon at `AWS_XRAY_DAEMON_ADDRESS`,
    /// each invocation's header from `_X_AMZN_TRACE_ID` (which the runtime sets
    /// before each invocation). `None` where the daemon's address is not set (not
    /// in Lambda, or tracing off).
    pub fn from_env() -> Option<Self> {
        let daemon = daemon_address(&std::env::var(DAEMON_ADDRESS_VAR).ok()?)?;
        Self::new(daemon, || std::env::var(TRACE_HEADER_VAR).ok())
    }

    /// Whether the layer wants a span or event: spans that have a
    /// [`CORRELATION_FIELD`] (for the layer's per-layer filter).
    pub fn wants(metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_span() && metadata.fields().field(CORRELATION_FIELD).is_some()
    }
}

/// Reads the correlation id field of a span.
#[derive(Default)]
struct CorrelationId(Option<String>);

impl Visit for CorrelationId {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == CORRELATION_FIELD {
            self.0 = Some(format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == CORRELATION_FIELD {
            self.0 = Some(value.to_owned());
        }
    }
}

impl<S> Layer<S> for XrayLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(trace) = (self.header)()
            .as_deref()
            .and_then(TraceHeader::parse)
            .filter(|t| t.sampled)
        else {
            return;
        };
        let mut correlation = CorrelationId::default();
        attrs.record(&mut correlation);
        let (Some(correlation_id), Some(span)) = (correlation.0, ctx.span(id)) else {
            return;
        };
        span.extensions_mut().insert(Open {
            trace,
            start: now(),
            correlation_id,
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(open) = span.extensions_mut().remove::<Open>() else {
            return;
        };
        let datagram = datagram(
            &open.trace,
            span.name(),
            &new_id(),
            open.start,
            now().max(open.start),
            &[(CORRELATION_FIELD, &open.correlation_id)],
        );
        // A lost datagram loses an annotation, never a command: not even logged
        // (a log line from inside the logging layer would recurse).
        let _ = self.socket.send_to(datagram.as_bytes(), self.daemon);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    const HEADER: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0";

    #[test]
    fn the_trace_header_gives_root_parent_and_sampling() {
        assert_eq!(
            TraceHeader::parse(HEADER),
            Some(TraceHeader {
                root: "1-5759e988-bd862e3fe1be46a994272793".into(),
                parent: "53995c3f42cd8ad8".into(),
                sampled: true,
            })
        );
        let unsampled = TraceHeader::parse("Root=1-a-b;Parent=c;Sampled=0").unwrap();
        assert!(!unsampled.sampled);
        assert!(!TraceHeader::parse("Root=1-a-b;Parent=c").unwrap().sampled);
        for bad in ["", "Root=1-a-b", "Parent=c;Sampled=1", "Root=;Parent=c"] {
            assert_eq!(TraceHeader::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_daemon_address_is_read_in_both_forms() {
        let udp: SocketAddr = "169.254.79.129:2000".parse().unwrap();
        assert_eq!(daemon_address("169.254.79.129:2000"), Some(udp));
        assert_eq!(
            daemon_address("tcp:127.0.0.1:2001 udp:169.254.79.129:2000"),
            Some(udp)
        );
        assert_eq!(daemon_address("udp:169.254.79.129:2000"), Some(udp));
        for bad in ["", "nowhere", "tcp:127.0.0.1:2000 tcp:127.0.0.1:2001"] {
            assert_eq!(daemon_address(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_datagram_is_the_header_line_then_a_subsegment_document() {
        let header = TraceHeader::parse(HEADER).unwrap();
        let sent = datagram(
            &header,
            "command",
            "0123456789abcdef",
            1.5,
            2.25,
            &[("correlation_id", "c-1")],
        );
        let (first, document) = sent.split_once('\n').unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(first).unwrap(),
            json!({"format": "json", "version": 1})
        );
        assert_eq!(
            serde_json::from_str::<Value>(document).unwrap(),
            json!({
                "name": "command", "id": "0123456789abcdef",
                "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
                "parent_id": "53995c3f42cd8ad8", "type": "subsegment",
                "start_time": 1.5, "end_time": 2.25,
                "annotations": {"correlation_id": "c-1"}
            })
        );
        let id = new_id();
        assert!(
            id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
    }

    /// A daemon on loopback, and a layer sending to it with `header` as the
    /// invocation's trace header.
    fn daemon_and_layer(header: Option<&'static str>) -> (UdpSocket, XrayLayer) {
        let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
        // A bound on a test that fails, not a wait: the datagram is sent before
        // `recv` is called.
        daemon
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let layer = XrayLayer::new(daemon.local_addr().unwrap(), move || {
            header.map(str::to_owned)
        })
        .unwrap();
        (daemon, layer)
    }

    fn run_commands(layer: XrayLayer) {
        use tracing_subscriber::Layer as _;
        let subscriber = tracing_subscriber::registry()
            .with(layer.with_filter(tracing_subscriber::filter::filter_fn(XrayLayer::wants)));
        tracing::subscriber::with_default(subscriber, || {
            // A span without the field, and an event, send nothing.
            tracing::info_span!("message", message_id = "m-1").in_scope(|| {
                tracing::info!("nothing to send");
                let id = uuid::Uuid::nil();
                tracing::info_span!("command", correlation_id = %id, user = "U1")
                    .in_scope(|| tracing::info!("ran"));
            });
        });
    }

    #[test]
    fn a_command_span_is_sent_to_the_daemon_as_an_annotated_subsegment() {
        // GIVEN a daemon on loopback and a sampled invocation
        let (daemon, layer) = daemon_and_layer(Some(HEADER));
        // WHEN a command span opens and closes inside another span
        run_commands(layer);
        // THEN the daemon got one datagram: the header, then the subsegment
        let mut buffer = [0u8; 65_536];
        let (n, _) = daemon.recv_from(&mut buffer).unwrap();
        let sent = std::str::from_utf8(&buffer[..n]).unwrap();
        let (first, document) = sent.split_once('\n').unwrap();
        assert_eq!(first, DAEMON_HEADER);
        let document: Value = serde_json::from_str(document).unwrap();
        assert_eq!(document["name"], "command");
        assert_eq!(document["type"], "subsegment");
        assert_eq!(document["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(document["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(
            document["annotations"],
            json!({"correlation_id": "00000000-0000-0000-0000-000000000000"})
        );
        let (start, end) = (
            document["start_time"].as_f64().unwrap(),
            document["end_time"].as_f64().unwrap(),
        );
        assert!(start > 1.7e9 && end >= start, "{document}");
        // AND nothing else: the next datagram would be a second subsegment
        daemon.set_nonblocking(true).unwrap();
        assert!(daemon.recv_from(&mut buffer).is_err());
    }

    #[test]
    fn nothing_is_sent_for_an_unsampled_or_untraced_invocation() {
        for header in [Some("Root=1-a-b;Parent=c;Sampled=0"), None] {
            let (daemon, layer) = daemon_and_layer(header);
            run_commands(layer);
            daemon.set_nonblocking(true).unwrap();
            let mut buffer = [0u8; 1024];
            assert!(daemon.recv_from(&mut buffer).is_err(), "{header:?}");
        }
    }
}
