//! The hot paths, in process: verifying a signature, the whole ack path of a slash
//! command (verify, parse, admit, build and seal the job envelope, answer), resolving
//! a command line, and a whole command through the engine (tokenize, resolve,
//! authorize, load, run, save, audit) on the memory store.
//!
//! `cargo bench -p catbot --bench engine`

use std::hint::black_box;
use std::sync::Arc;

use catbot::packs::queue;
use criterion::{Criterion, criterion_group, criterion_main};
use opkit::BoxFuture;
use opkit::builtin;
use opkit::clock::ManualClock;
use opkit::config::Config;
use opkit::engine::bot::{Bot, Request};
use opkit::engine::command::Caller;
use opkit::ids::UserId;
use opkit::ingress::{Ingress, Route, SlackRequest};
use opkit::job::{EnvelopeKey, Job, JobQueue, QueueError};
use opkit::slack::{SigningSecret, Verifier, sign};
use opkit::store::memory::MemoryStore;
use opkit::text::tokenize;

const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

fn signing(c: &mut Criterion) {
    let secret = SigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5");
    let signature = sign(&secret, 1_531_420_618, BODY);
    let verifier = Verifier::new(secret, Arc::new(ManualClock::at_unix(1_531_420_618)));
    c.bench_function("verify Slack signature (362-byte body)", |b| {
        b.iter(|| verifier.verify(Some("1531420618"), Some(&signature), black_box(BODY)))
    });
}

/// A queue that seals each job as the SQS queue does, and keeps only its length.
struct Sealing(EnvelopeKey);

impl JobQueue for Sealing {
    fn enqueue<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            black_box(job.encode(&self.0).len());
            Ok(())
        })
    }
}

fn ack_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let config = Config::from_lookup(|name| match name {
        "SLACK_SIGNING_SECRET" => Some(secret.to_string()),
        "OPKIT_TEAM_IDS" => Some("T1DC2JH3J".to_string()),
        _ => None,
    })
    .unwrap();
    let queue = Arc::new(Sealing(
        EnvelopeKey::new("bench-envelope-key-0123456789abcdef").unwrap(),
    ));
    let clock = Arc::new(ManualClock::at_unix(1_531_420_618));
    let ingress = Ingress::new(&config, clock, queue).unwrap();
    let signature = sign(&SigningSecret::new(secret), 1_531_420_618, BODY);
    let request = SlackRequest {
        timestamp: Some("1531420618"),
        signature: Some(&signature),
        body: BODY,
    };
    let answer = runtime.block_on(ingress.handle(Route::Commands, request));
    assert_eq!(answer.status.as_u16(), 200, "the bench request is acked");
    c.bench_function(
        "ack a slash command: verify, parse, admit, seal the job, answer (362-byte body)",
        |b| b.iter(|| runtime.block_on(ingress.handle(Route::Commands, black_box(request)))),
    );
}

fn bot() -> Bot {
    Bot::builder(Arc::new(MemoryStore::new()))
        .clock(Arc::new(ManualClock::at_unix(1_800_000_000)))
        .admins([UserId::parse("UADMIN").unwrap()])
        .script(builtin::script(builtin::Policy::default()))
        .script(queue::script())
        .build()
        .unwrap()
}

fn matching(c: &mut Criterion) {
    let bot = bot();
    c.bench_function(
        "tokenize + resolve `roles grant <@U1|al> ops for 2h`",
        |b| {
            b.iter(|| {
                let tokens = tokenize(black_box("roles grant <@U1|al> ops for 2h"));
                black_box(bot.registry().resolve(&tokens));
            })
        },
    );
}

fn whole_command(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bot = bot();
    let caller = Caller::user(UserId::parse("U1").unwrap());
    c.bench_function("handle `queue status perf` (memory store)", |b| {
        b.to_async(&runtime).iter(|| {
            let request = Request::new(caller.clone(), "queue status perf");
            let bot = bot.clone();
            async move { black_box(bot.handle(&request).await) }
        })
    });
    c.bench_function("handle `audit last 1`, denied (memory store)", |b| {
        b.to_async(&runtime).iter(|| {
            let request = Request::new(caller.clone(), "audit last 1");
            let bot = bot.clone();
            async move { black_box(bot.handle(&request).await) }
        })
    });
}

criterion_group!(benches, signing, ack_path, matching, whole_command);
criterion_main!(benches);
