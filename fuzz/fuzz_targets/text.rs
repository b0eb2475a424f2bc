//! The tokenizer and the matcher: any text a user can type tokenizes (and its
//! canonical form, what prompts show and what then runs, reads back to itself) and resolves
//! against Catbot's registry without a panic, and the engine answers it as an
//! admin would type it after `help`, `can`, `queue`, `roles` and `schedule add`.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use opkit::engine::{Bot, Caller, Request};
use opkit::ids::UserId;
use opkit::store::memory::MemoryStore;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Opkit's built-ins and Catbot's queue and schedule packs (the ones that need no
/// network) on a fresh memory store, so no input sees another's state.
fn bot() -> Bot {
    use catbot::packs::{queue, schedule};
    Bot::builder(Arc::new(MemoryStore::new()))
        .clock(Arc::new(opkit::clock::ManualClock::at_unix(1_800_000_000)))
        .admins([UserId::parse("UFUZZ").unwrap()])
        .script(opkit::builtin::script(Default::default()))
        .script(queue::script())
        .script(schedule::script(schedule::default_managers()))
        .build()
        .unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tokens = opkit::text::tokenize(text);
    // What a prompt shows is what runs: the canonical form reads back to itself.
    let shown = opkit::text::canonical(&tokens);
    assert_eq!(opkit::text::canonical(&opkit::text::tokenize(&shown)), shown);
    assert!(!shown.contains(['\n', '\r', '`']), "{shown:?}");
    let bot = bot();
    let _ = bot.registry().resolve(&tokens);
    // The whole engine, for commands that touch no network: help and can parse
    // arbitrary arguments; `queue` and `roles` parse and (maybe) change memory.
    let caller = Caller::user(UserId::parse("UFUZZ").unwrap());
    for prefix in ["help ", "can <@U1> ", "queue ", "roles ", "schedule add x "] {
        let request = Request::new(caller.clone(), format!("{prefix}{text}"));
        runtime().block_on(bot.handle(&request));
    }
});
