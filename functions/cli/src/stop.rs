//! How `opkit serve` (over HTTP and in Socket Mode alike) and `opkit worker` are
//! asked to stop: Ctrl-C (SIGINT) or SIGTERM, what `kill`, `docker stop` and
//! systemd send. Either one starts the same graceful stop: `serve` takes no new
//! requests, then finishes the acked jobs ([`crate::serve::Jobs::drain`]);
//! `worker` finishes the batch under way and receives no other.

use std::future::Future;

/// Listens for SIGINT and SIGTERM from now on (the handlers are in place when
/// this returns, so a signal sent at once is not the default, fatal one), and
/// resolves when either comes (logged). A signal that cannot be listened for is
/// logged, and the other one still stops the process. Call it within the runtime.
pub(crate) fn requested() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &'static str| {
            let listening = signal(kind);
            if let Err(e) = &listening {
                tracing::warn!(error = %e, "cannot listen for {name}");
            }
            async move {
                match listening {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
                name
            }
        };
        let interrupt = listen(SignalKind::interrupt(), "SIGINT");
        let terminate = listen(SignalKind::terminate(), "SIGTERM");
        async move {
            let signal = tokio::select! {
                name = interrupt => name,
                name = terminate => name,
            };
            tracing::info!(signal, "asked to stop");
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!(signal = "Ctrl-C", "asked to stop");
    }
}
