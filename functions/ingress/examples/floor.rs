//! The floor of the cold-start benchmark: a bare `lambda_http` function that
//! answers 200 with the request's body, built with the same crates and release
//! profile as the ingress. Whatever the ingress takes beyond this is Opkit's.
//!
//! `cargo build --release -p opkit-ingress --example floor` (`infra/bench.sh` builds
//! and runs it beside the ingress).

use lambda_http::{Body, Error, Request, Response, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|request: Request| async move {
        Response::builder()
            .status(200)
            .body(Body::from(request.body().as_ref().to_vec()))
            .map_err(Error::from)
    }))
    .await
}
