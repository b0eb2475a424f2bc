//! `opkit serve`: Slack's routes over HTTP, with an in-process queue and worker —
//! the same shape as the deployed ingress → SQS → worker path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opkit::clock::SystemClock;
use opkit::config::Config;
use opkit::engine::bot::Bot;
use opkit::expiry::Expiry;
use opkit::ingress::{Ingress, Route, SlackRequest};
use opkit::job::{EnvelopeKey, JobQueue};
use opkit::slack::HttpPoster;
use opkit::sqs::SqsQueue;
use opkit::telemetry::ErrorChain;
use opkit::worker::{INLINE_LIMIT, InlineQueue, JobRunner, Worker};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the in-process expiry pass runs.
const EXPIRY_EVERY: Duration = Duration::from_secs(30);

/// Builds the worker and ingress, binds, and serves until asked to stop
/// (SIGINT or SIGTERM, [`crate::stop::requested`]), then finishes the acked
/// jobs ([`Jobs::drain`]). With
/// `sqs`, accepted commands go to OPKIT_QUEUE_URL for `opkit worker`; otherwise
/// an in-process queue and worker run them, and an expiry pass runs every 30 s.
pub async fn run(
    config: Config,
    bot: Bot,
    addr: SocketAddr,
    sqs: Option<SdkConfig>,
) -> Result<(), String> {
    // Checked before the queue starts its worker and expiry pass, so that a
    // missing secret is the only line printed.
    config.require_signing_secret().map_err(|e| e.to_string())?;
    let clock = Arc::new(SystemClock);
    let jobs = job_queue(&config, bot, sqs.as_ref())?;
    let ingress =
        Arc::new(Ingress::new(&config, clock, jobs.queue.clone()).map_err(|e| e.to_string())?);
    let app = router(ingress, opkit::metrics::install_prometheus());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    // Listening for a stop before saying it is ready: a signal from then on drains.
    let stop = crate::stop::requested();
    // Tests and scripts read this line to learn the port.
    outln!("listening on http://{bound}");
    tracing::info!(%bound, "serving Slack routes");
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| e.to_string())?;
    jobs.drain().await;
    Ok(())
}

/// How long a graceful stop waits for the in-process jobs already acked.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Where accepted commands go ([`job_queue`]), and the in-process queue and its
/// expiry pass when there are, so that a stop can wait for them.
pub(crate) struct Jobs {
    /// The queue the ingress puts each accepted command on.
    pub(crate) queue: Arc<dyn JobQueue>,
    /// The in-process queue behind `queue`, when commands run in this process.
    inline: Option<InlineQueue>,
    /// The in-process expiry pass: told to stop, and its task.
    expiry: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Jobs {
    /// At a graceful stop (SIGINT or SIGTERM, over HTTP or in Socket Mode): stops
    /// the expiry pass (a pass under way ends first, so no schedule it took is
    /// lost), then waits for the in-process jobs already acked to finish — each
    /// was told "Working…" and is owed its answer — at most [`DRAIN_LIMIT`]
    /// for both; what is still running then is logged by count. Jobs on SQS need
    /// nothing: the queue keeps them for `opkit worker`.
    pub(crate) async fn drain(self) {
        let Some(inline) = &self.inline else { return };
        let waiting = inline.in_flight();
        if waiting > 0 {
            tracing::info!(jobs = waiting, "finishing the acked jobs before stopping");
        }
        let finished = async {
            if let Some((stop, pass)) = self.expiry {
                let _ = stop.send(true);
                let _ = pass.await;
            }
            inline.idle().await;
        };
        if tokio::time::timeout(DRAIN_LIMIT, finished).await.is_err() {
            tracing::error!(
                jobs = inline.in_flight(),
                "stopped with acked jobs unfinished after {DRAIN_LIMIT:?}"
            );
        }
    }
}

/// Where accepted commands go: OPKIT_QUEUE_URL with `sqs` (the AWS settings), sealed
/// with OPKIT_ENVELOPE_KEY for `opkit worker`; otherwise an in-process queue and
/// worker, plus an expiry pass every 30 s. Shared by the HTTP routes and Socket Mode.
/// The in-process queue runs each job as the worker Lambda does: sealed and opened
/// (with a random key of this process: nothing else reads that queue), then claimed
/// in the bot's store, so an event Slack sends again runs once. It holds at most
/// [`INLINE_LIMIT`] jobs; past that the ack says the bot is busy (memory stays
/// bounded under a burst, and nothing is dropped unsaid).
pub(crate) fn job_queue(
    config: &Config,
    bot: Bot,
    sqs: Option<&SdkConfig>,
) -> Result<Jobs, String> {
    Ok(if let Some(sdk) = sqs {
        let url = config.require_queue_url().map_err(|e| e.to_string())?;
        let key = config.require_envelope_key().map_err(|e| e.to_string())?;
        Jobs {
            queue: Arc::new(SqsQueue::new(
                aws_sdk_sqs::Client::new(sdk),
                url,
                key.clone(),
            )),
            inline: None,
            expiry: None,
        }
    } else {
        let http = reqwest::Client::new();
        let channels = catbot::channel_poster(config, http.clone());
        let expiry = Expiry::new(bot.clone(), channels.clone());
        let store = bot.store().clone();
        let worker = Arc::new(Worker::new(bot, Arc::new(HttpPoster::new(http)), channels));
        let runner = Arc::new(JobRunner::new(worker, store, EnvelopeKey::random()));
        let queue = Arc::new(InlineQueue::start(runner, INLINE_LIMIT));
        let (stop, stopping) = watch::channel(false);
        let pass = spawn_expiry(expiry.with_queue(queue.clone()), stopping);
        Jobs {
            inline: Some((*queue).clone()),
            queue,
            expiry: Some((stop, pass)),
        }
    })
}

/// Runs an expiry pass every [`EXPIRY_EVERY`] until `stopping` says so; a pass
/// under way is finished first.
fn spawn_expiry(expiry: Expiry, mut stopping: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EXPIRY_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
            if let Err(e) = expiry.run_once().await {
                tracing::error!(error = %ErrorChain(&e), "expiry pass failed");
            }
        }
    })
}

fn router(ingress: Arc<Ingress>, metrics: Arc<opkit::metrics::Registry>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(move || async move { prometheus(&metrics) }))
        .route("/slack/commands", slack_route(Route::Commands))
        .route("/slack/events", slack_route(Route::Events))
        .route("/slack/interactions", slack_route(Route::Interactions))
        .with_state(ingress)
}

/// `POST` to one of Slack's routes, reading no more of a body than the route
/// takes ([`Route::max_body`], the limit the ingress Lambda and Socket Mode hold
/// it to as well).
fn slack_route(route: Route) -> axum::routing::MethodRouter<Arc<Ingress>> {
    post(slack).layer(DefaultBodyLimit::max(route.max_body()))
}

async fn slack(
    State(ingress): State<Arc<Ingress>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(route) = Route::from_path(uri.path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let slack = SlackRequest::from_http(&headers, &body);
    opkit::metrics::time_ack(route, ingress.handle(route, slack))
        .await
        .into_http()
        .into_response()
}

/// `GET /metrics`: the bot's metrics in Prometheus' text format (`opkit_` names).
fn prometheus(metrics: &opkit::metrics::Registry) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            opkit::metrics::CONTENT_TYPE,
        )],
        metrics.render(),
    )
        .into_response()
}
