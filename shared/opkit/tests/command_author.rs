//! A command author's whole experience, as the README tells it: the seed's
//! weather command with a ten-minute cache shared by its script, written with
//! `opkit::prelude` alone, and its tests with `opkit::testing` — no AWS, no Slack.
//! The README shows the code between the `README` markers; the last test checks
//! that it still does, word for word.

// README: the command
use std::{collections::HashMap, sync::Arc};

use opkit::prelude::*;
use serde::{Deserialize, Serialize};

/// Reports by town and when they were fetched: the script's state, shared by all.
#[derive(Default, Serialize, Deserialize)]
pub struct Cache(HashMap<String, (DateTime<Utc>, String)>);

/// Where reports come from: a weather API when deployed, a fake in tests.
pub type Source =
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<String, CommandError>> + Send + Sync>;

pub fn script(source: Source) -> Script<Cache> {
    Script::new("weather").command(
        Command::new("weather")
            .alias("weather in")
            .usage("<town>")
            .describe("The weather in a town, at most ten minutes old")
            .handler(move |ctx| Box::pin(weather(ctx, source.clone()))),
    )
}

async fn weather(ctx: &mut Ctx<Cache>, source: Source) -> Result<Reply, CommandError> {
    let town = ctx.args.word(0, "a town")?.to_lowercase();
    let (at, report) = match ctx.state.0.get(&town) {
        Some((at, report)) if ctx.now - *at < Duration::minutes(10) => (*at, report.clone()),
        _ => (ctx.now, source(town.clone()).await?),
    };
    ctx.state.0.insert(town.clone(), (at, report.clone()));
    // What the user typed and what the source said are text: `UserText` escapes them.
    let (town, report) = (UserText::line(&town), UserText::new(report));
    Ok(Reply::text(mrkdwn!("Weather in {}: {}", town, report)))
}
// README: end

// README: the test
use std::sync::atomic::{AtomicUsize, Ordering};

use opkit::testing::TestBot;

/// A source that answers "sunny" and counts the calls.
fn fake(calls: Arc<AtomicUsize>) -> Source {
    Arc::new(move |_town| {
        calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok("sunny".to_string()) })
    })
}

#[tokio::test]
async fn one_call_serves_everyone_for_ten_minutes() {
    let calls = Arc::new(AtomicUsize::new(0));
    let t = TestBot::with(|b| b.script(script(fake(calls.clone()))));

    assert_eq!(
        t.text("UBOB", "weather Paris").await,
        "Weather in paris: sunny"
    );
    assert_eq!(
        t.text("UCAROL", "weather in paris").await,
        "Weather in paris: sunny"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the second asker got the cache"
    );

    t.advance(Duration::minutes(11));
    t.text("UBOB", "weather paris").await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "ten minutes on, it asks again"
    );
    let cache: Cache = t.state("weather").await;
    assert_eq!(cache.0["paris"].0, t.now());
}
// README: end

#[tokio::test]
async fn a_missing_town_gets_the_usage_and_runs_nothing() {
    let calls = Arc::new(AtomicUsize::new(0));
    let t = TestBot::with(|b| b.script(script(fake(calls.clone()))));
    let reply = t.text("UBOB", "weather").await;
    assert!(reply.contains("missing a town"), "{reply}");
    // The grammar's angle brackets are text, escaped as Slack expects.
    assert!(reply.contains("weather &lt;town&gt;"), "{reply}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let cache: Cache = t.state("weather").await;
    assert!(cache.0.is_empty());
}

#[tokio::test]
async fn a_failing_source_is_an_internal_error_shown_as_a_reference() {
    let source: Source =
        Arc::new(|_| Box::pin(async { Err(CommandError::internal("weather API answered 503")) }));
    let t = TestBot::with(|b| b.script(script(source)));
    let reply = t.text("UBOB", "weather paris").await;
    assert!(
        !reply.contains("503"),
        "internal detail stays in the log: {reply}"
    );
    let trail = t.audit(1).await;
    assert_eq!(trail[0].outcome.name(), "failed");
}

/// The README's "Writing a command" shows this file's marked sections verbatim,
/// and the command itself stays within 30 lines.
#[test]
fn the_readme_shows_this_code_and_the_command_fits_in_thirty_lines() {
    let this = include_str!("command_author.rs");
    let marker = concat!("// READ", "ME: ");
    let readme = include_str!("../../../README.md");
    let sections: Vec<&str> = this
        .split(marker)
        .skip(1)
        .filter_map(|s| s.split_once('\n'))
        .filter(|(title, _)| *title != "end")
        .map(|(_, code)| code.trim())
        .collect();
    assert_eq!(sections.len(), 2);
    for code in &sections {
        assert!(readme.contains(code), "README.md lacks:\n{code}");
    }
    let lines = sections[0].lines().filter(|l| !l.trim().is_empty()).count();
    assert!(lines <= 30, "the command takes {lines} lines");
}
