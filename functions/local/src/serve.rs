//! `opkit serve`: Slack's routes over HTTP, with an in-process queue and worker —
//! the same shape as the deployed ingress → SQS → worker path.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opkit::bot::Bot;
use opkit::clock::SystemClock;
use opkit::config::Config;
use opkit::ingress::{Ingress, MAX_BODY, Route, SlackRequest};
use opkit::slack::{ChannelPoster, HttpPoster, SlackApi};
use opkit::worker::{InlineQueue, Worker};

/// Builds the worker and ingress, binds, and serves until interrupted.
pub async fn run(config: Config, bot: Bot, addr: SocketAddr) -> Result<(), String> {
    let clock = Arc::new(SystemClock);
    let http = reqwest::Client::new();
    let channels: Option<Arc<dyn ChannelPoster>> = config.bot_token.clone().map(|token| {
        Arc::new(SlackApi::new(token, http.clone()).with_base_url(&config.slack_api_url))
            as Arc<dyn ChannelPoster>
    });
    let worker = Arc::new(Worker::new(bot, Arc::new(HttpPoster::new(http)), channels));
    let queue = Arc::new(InlineQueue::start(worker, 1024));
    let ingress = Arc::new(Ingress::new(&config, clock, queue).map_err(|e| e.to_string())?);
    let app = router(ingress);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    // Tests and scripts read this line to learn the port.
    println!("listening on http://{bound}");
    tracing::info!(%bound, "serving Slack routes");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}

fn router(ingress: Arc<Ingress>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/slack/commands", post(slack))
        .route("/slack/events", post(slack))
        .route("/slack/interactions", post(slack))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(ingress)
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
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let answer = ingress
        .handle(
            route,
            SlackRequest {
                timestamp: header("x-slack-request-timestamp"),
                signature: header("x-slack-signature"),
                body: &body,
            },
        )
        .await;
    let (content_type, body) = answer.body();
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}
