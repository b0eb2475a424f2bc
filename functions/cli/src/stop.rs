//! How `opkit serve` is asked to stop — over HTTP and in Socket Mode alike:
//! Ctrl-C (SIGINT) or SIGTERM, what `kill`, `docker stop` and systemd send.
//! Either one starts the same graceful stop: no new requests, then the acked jobs
//! are finished ([`crate::serve::Jobs::drain`]).

/// Resolves when the process is asked to stop: SIGINT or SIGTERM, whichever
/// comes first (logged). A signal that cannot be listened for is logged, and the
/// other one still stops the process.
pub(crate) async fn requested() {
    let signal = tokio::select! {
        () = interrupt() => "SIGINT",
        () = terminate() => "SIGTERM",
    };
    tracing::info!(signal, "asked to stop");
}

/// Ctrl-C; never, if it cannot be listened for.
async fn interrupt() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}

/// SIGTERM; never, if it cannot be listened for (or there is none).
async fn terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM"),
        }
    }
    std::future::pending::<()>().await;
}
