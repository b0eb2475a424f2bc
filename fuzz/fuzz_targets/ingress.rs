//! The whole ack path on a validly signed body: whatever a signed request carries
//! — form, JSON, payloads of any shape — the ingress answers without a panic, and
//! anything it queues is a job envelope the worker can read back.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use opkit::BoxFuture;
use opkit::clock::ManualClock;
use opkit::config::Config;
use opkit::ingress::{Ingress, Route, SlackRequest};
use opkit::job::{EnvelopeKey, Job, JobQueue, QueueError};
use opkit::slack::{SigningSecret, sign};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const NOW: i64 = 1_800_000_000;

/// Seals what the ingress queues, as the SQS queue does.
struct Queued(EnvelopeKey, Mutex<Vec<String>>);

impl JobQueue for Queued {
    fn enqueue<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), QueueError>> {
        self.1.lock().unwrap().push(job.encode(&self.0));
        Box::pin(std::future::ready(Ok(())))
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let route = match which % 3 {
        0 => Route::Commands,
        1 => Route::Events,
        _ => Route::Interactions,
    };
    let config = Config::from_lookup(|name| (name == "SLACK_SIGNING_SECRET").then(|| SECRET.into()))
        .unwrap();
    let key = EnvelopeKey::new("fuzz-envelope-key-0123456789abcdef").unwrap();
    let queue = Arc::new(Queued(key.clone(), Mutex::default()));
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let ingress = Ingress::new(&config, clock, queue.clone()).unwrap();
    let timestamp = NOW.to_string();
    let signature = sign(&SigningSecret::new(SECRET), NOW, body);
    let request = SlackRequest {
        timestamp: Some(&timestamp),
        signature: Some(&signature),
        body,
    };
    let _answer = runtime().block_on(ingress.handle(route, request));
    for envelope in queue.1.lock().unwrap().iter() {
        Job::decode(envelope, &key).expect("the worker reads every envelope the ingress writes");
    }
});
