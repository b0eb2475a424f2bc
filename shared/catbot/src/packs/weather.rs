//! The seed's example: the weather in a town, from an HTTP API, cached in the
//! script's state for ten minutes.
//!
//! ```text
//! weather <town>
//! weather in <town>
//! ```
//!
//! It speaks OpenWeatherMap's current-weather API
//! (`GET {base}/weather?q={town}&appid={key}&units=metric`); the base URL and key
//! come from `OPKIT_WEATHER_URL` and `OPKIT_WEATHER_KEY`. It is also the example
//! of how to write a command: see the README.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use opkit::engine::command::{Command, CommandError, Ctx, Script};
use opkit::mrkdwn;
use opkit::secret::Secret;
use opkit::slack::Reply;
use opkit::slack::mrkdwn::{Mrkdwn, UserText};

/// How long an answer is reused.
pub const CACHE_FOR: Duration = Duration::minutes(10);

/// Most towns kept in the cache.
const CACHE_MAX: usize = 200;

/// The most characters kept (and shown) of a town's name or description as the
/// weather service sends them.
pub const SERVICE_TEXT_MAX: usize = 100;

/// Where to ask.
#[derive(Debug, Clone)]
pub struct WeatherConfig {
    /// API base URL, without a trailing slash.
    pub base_url: String,
    /// API key; without one the command explains how to set it.
    pub api_key: Option<Secret>,
    /// HTTP client (with a timeout).
    pub http: reqwest::Client,
}

impl WeatherConfig {
    /// A configuration with a 5-second request timeout.
    pub fn new(base_url: impl Into<String>, api_key: Option<Secret>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(StdDuration::from_secs(5))
            .build()
            .expect("a TLS backend is compiled in");
        Self {
            base_url: base_url.into(),
            api_key,
            http,
        }
    }
}

/// The cache, kept in the script's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeatherState {
    /// Recent reports by lower-cased town.
    #[serde(default)]
    pub cache: BTreeMap<String, Cached>,
}

/// A report and when it was fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cached {
    /// When it was fetched.
    pub at: DateTime<Utc>,
    /// What came back.
    pub report: Report,
}

/// The parts of the answer that are shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The town, as the service names it.
    pub town: String,
    /// "light rain".
    pub description: String,
    /// Temperature, °C.
    pub temp_c: f64,
    /// Feels like, °C.
    pub feels_like_c: f64,
    /// Relative humidity, %.
    pub humidity: f64,
    /// Wind speed, m/s.
    pub wind_ms: f64,
}

impl Report {
    /// The report as a reply; the names come from the weather service: text.
    fn describe(&self) -> Mrkdwn {
        mrkdwn!(
            "{}: {}, {}°C (feels like {}°C), humidity {}%, wind {} m/s",
            UserText::line(&self.town),
            UserText::line(&self.description),
            UserText::new(format!("{:.0}", self.temp_c)),
            UserText::new(format!("{:.0}", self.feels_like_c)),
            UserText::new(format!("{:.0}", self.humidity)),
            UserText::new(format!("{:.1}", self.wind_ms))
        )
    }
}

/// OpenWeatherMap's answer, only the fields used.
#[derive(Deserialize)]
struct ApiAnswer {
    name: String,
    weather: Vec<ApiCondition>,
    main: ApiMain,
    #[serde(default)]
    wind: Option<ApiWind>,
}

#[derive(Deserialize)]
struct ApiCondition {
    description: String,
}

#[derive(Deserialize)]
struct ApiMain {
    temp: f64,
    feels_like: f64,
    humidity: f64,
}

#[derive(Deserialize)]
struct ApiWind {
    speed: f64,
}

/// The weather script.
pub fn script(config: WeatherConfig) -> Script<WeatherState> {
    Script::new("weather").command(
        Command::new("weather")
            .alias("weather in")
            .usage("<town>")
            .describe("The weather in a town right now")
            .example("weather in \"New York\"")
            .in_channel()
            .handler(move |ctx| Box::pin(weather(ctx, config.clone()))),
    )
}

async fn weather(
    ctx: &mut Ctx<WeatherState>,
    config: WeatherConfig,
) -> Result<Reply, CommandError> {
    // The town as typed, decoded once: it leaves Slack for the weather service.
    let town = ctx.args.rest_text(0);
    if town.is_empty() {
        return Err(CommandError::usage("missing a town"));
    }
    if town.chars().count() > 100 {
        return Err(CommandError::usage("that town name is too long"));
    }
    let key = town.to_lowercase();
    let now = ctx.now;
    if let Some(hit) = ctx.state.cache.get(&key).filter(|c| now - c.at < CACHE_FOR) {
        return Ok(Reply::text(hit.report.describe()));
    }
    let Some(api_key) = &config.api_key else {
        return Err(CommandError::user(
            "The weather command needs an API key: set OPKIT_WEATHER_KEY (an OpenWeatherMap key; \
             OPKIT_WEATHER_URL points it at another compatible service).",
        ));
    };
    let report = fetch(&config, api_key, &town).await?;
    ctx.state.cache.retain(|_, c| now - c.at < CACHE_FOR);
    if ctx.state.cache.len() >= CACHE_MAX {
        return Ok(Reply::text(report.describe()));
    }
    let text = report.describe();
    ctx.state.cache.insert(key, Cached { at: now, report });
    Ok(Reply::text(text))
}

async fn fetch(config: &WeatherConfig, key: &Secret, town: &str) -> Result<Report, CommandError> {
    let response = config
        .http
        .get(format!("{}/weather", config.base_url))
        .query(&[("q", town), ("appid", key.expose()), ("units", "metric")])
        .send()
        .await
        .map_err(|e| {
            // The URL carries the API key in its query: never log it.
            tracing::warn!(error = %e.without_url(), "weather service unreachable");
            CommandError::user("The weather service did not answer; try again in a moment.")
        })?;
    match response.status().as_u16() {
        200 => {}
        404 => {
            return Err(CommandError::user(mrkdwn!(
                "The weather service does not know a town called {}.",
                UserText::line(town)
            )));
        }
        401 | 403 => {
            return Err(CommandError::user(
                "The weather service refused the API key in OPKIT_WEATHER_KEY.",
            ));
        }
        status => {
            tracing::warn!(status, "weather service error");
            return Err(CommandError::user(mrkdwn!(
                "The weather service failed (HTTP {}); try again later.",
                status
            )));
        }
    }
    let answer: ApiAnswer = response.json().await.map_err(|e| {
        CommandError::internal_with("weather service sent an unexpected answer", e.without_url())
    })?;
    // What the service names is cut: every report is kept in the cache, one
    // state shared by everyone ([`CACHE_MAX`] of them).
    let cut = |s: &str| s.chars().take(SERVICE_TEXT_MAX).collect::<String>();
    Ok(Report {
        town: cut(&answer.name),
        description: answer
            .weather
            .first()
            .map(|c| cut(&c.description))
            .unwrap_or_else(|| "no description".into()),
        temp_c: answer.main.temp,
        feels_like_c: answer.main.feels_like,
        humidity: answer.main.humidity,
        wind_ms: answer.wind.map_or(0.0, |w| w.speed),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use serde_json::json;

    use super::*;
    use opkit::testing::TestBot;

    /// A fake OpenWeatherMap on a loopback port; counts the calls it gets.
    async fn fake_weather() -> (String, Arc<AtomicUsize>) {
        async fn answer(
            State(calls): State<Arc<AtomicUsize>>,
            Query(q): Query<BTreeMap<String, String>>,
        ) -> impl IntoResponse {
            calls.fetch_add(1, Ordering::SeqCst);
            if q.get("appid").map(String::as_str) != Some("k3y") {
                return (StatusCode::UNAUTHORIZED, axum::Json(json!({"cod": 401}))).into_response();
            }
            if q.get("units").map(String::as_str) != Some("metric") {
                return StatusCode::BAD_REQUEST.into_response();
            }
            match q.get("q").map(String::as_str) {
                Some("Raleigh") | Some("raleigh") => axum::Json(json!({
                    "name": "Raleigh",
                    "weather": [{"description": "light rain"}],
                    "main": {"temp": 12.4, "feels_like": 11.0, "humidity": 81},
                    "wind": {"speed": 3.6}
                }))
                .into_response(),
                Some("Broken") => (StatusCode::OK, "not json").into_response(),
                Some("Verbose") => axum::Json(json!({
                    "name": "V".repeat(50_000),
                    "weather": [{"description": "d".repeat(50_000)}],
                    "main": {"temp": 1.0, "feels_like": 1.0, "humidity": 1},
                }))
                .into_response(),
                // Known only when the name arrives decoded exactly once; the
                // service's own answer carries markup characters too.
                Some("R&D park") => axum::Json(json!({
                    "name": "R&D <!here> Park",
                    "weather": [{"description": "sunny"}],
                    "main": {"temp": 20.0, "feels_like": 19.0, "humidity": 50},
                    "wind": {"speed": 1.0}
                }))
                .into_response(),
                _ => (StatusCode::NOT_FOUND, axum::Json(json!({"cod": "404"}))).into_response(),
            }
        }
        let calls = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/data/2.5/weather", get(answer))
            .with_state(calls.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/data/2.5"), calls)
    }

    fn bot(base: &str, key: Option<&str>) -> TestBot {
        let config = WeatherConfig::new(base, key.map(Secret::new));
        TestBot::with(|b| b.script(script(config)))
    }

    #[tokio::test]
    async fn both_forms_answer_and_the_answer_is_cached_for_ten_minutes() {
        let (base, calls) = fake_weather().await;
        let t = bot(&base, Some("k3y"));
        let expected = "Raleigh: light rain, 12°C (feels like 11°C), humidity 81%, wind 3.6 m/s";
        assert_eq!(t.text("UA", "weather in Raleigh").await, expected);
        assert_eq!(t.text("UB", "weather raleigh").await, expected);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "second ask served from the cache"
        );
        t.advance(Duration::minutes(10));
        t.say("UB", "weather Raleigh").await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "stale entry fetched again");
    }

    #[tokio::test]
    async fn what_the_service_names_is_cut_before_it_is_cached() {
        // GIVEN a service answering with a 50,000-character name and description
        let (base, _) = fake_weather().await;
        let t = bot(&base, Some("k3y"));
        // WHEN asked
        let text = t.text("UA", "weather Verbose").await;
        // THEN both are cut, in the reply and in the shared cache
        assert!(
            text.starts_with(&format!("{}: {},", "V".repeat(100), "d".repeat(100))),
            "{}",
            &text[..300]
        );
        let state: WeatherState = t.state("weather").await;
        let cached = &state.cache["verbose"].report;
        assert_eq!(cached.town.chars().count(), SERVICE_TEXT_MAX);
        assert_eq!(cached.description.chars().count(), SERVICE_TEXT_MAX);
    }

    #[tokio::test]
    async fn service_errors_become_clear_sentences() {
        let (base, _) = fake_weather().await;
        let t = bot(&base, Some("k3y"));
        assert_eq!(
            t.text("UA", "weather Atlantis").await,
            "The weather service does not know a town called Atlantis."
        );
        assert_eq!(
            t.text("UA", "weather \"Atlan\n`tis`\"").await,
            "The weather service does not know a town called Atlan⏎ˋtisˋ.",
            "what was typed is quoted on one line"
        );
        assert!(
            t.text("UA", "weather Broken")
                .await
                .starts_with("Something went wrong on my side")
        );
        assert_eq!(
            t.text("UA", "weather").await,
            "missing a town. Usage: `weather &lt;town&gt;`"
        );
        let wrong_key = bot(&base, Some("nope"));
        assert_eq!(
            wrong_key.text("UA", "weather Raleigh").await,
            "The weather service refused the API key in OPKIT_WEATHER_KEY."
        );
    }

    #[tokio::test]
    async fn user_text_is_never_markup_and_entities_are_decoded_once() {
        let (base, _) = fake_weather().await;
        let t = bot(&base, Some("k3y"));
        // GIVEN `<!channel>` typed as text, which Slack sends escaped (the issue's example)
        let reply = t.text("UA", "weather &lt;!channel&gt;").await;
        // THEN the error quotes it as text, escaped once: no live mention
        assert_eq!(
            reply,
            "The weather service does not know a town called &lt;!channel&gt;."
        );
        assert!(!reply.contains("<!"), "{reply}");
        // GIVEN a town with `&`, quoted and not, as Slack sends them
        let report =
            "R&amp;D &lt;!here&gt; Park: sunny, 20°C (feels like 19°C), humidity 50%, wind 1.0 m/s";
        for typed in ["weather \"R&amp;D park\"", "weather R&amp;D park"] {
            // THEN the service is asked for `R&D park` (it knows no other spelling),
            // AND the names it answers with are text too
            assert_eq!(t.text("UA", typed).await, report, "{typed}");
        }
    }

    #[tokio::test]
    async fn without_a_key_it_says_how_to_set_one_and_calls_nothing() {
        let (base, calls) = fake_weather().await;
        let t = bot(&base, None);
        assert!(
            t.text("UA", "weather Raleigh")
                .await
                .contains("set OPKIT_WEATHER_KEY")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_unreachable_service_is_reported_not_hung() {
        // A port that was just free: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let t = bot(&format!("http://{addr}"), Some("k3y"));
        assert_eq!(
            t.text("UA", "weather Raleigh").await,
            "The weather service did not answer; try again in a moment."
        );
    }

    /// Captures log lines as written, with no redaction: the site itself must not
    /// log the key.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_api_key_never_reaches_the_logs_or_the_reply() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let key = "weather-key-never-logged-1234";
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || sink.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let t = bot(&format!("http://{addr}"), Some(key));
        let reply = t.text("UA", "weather Raleigh").await;
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("weather service unreachable"), "{logs}");
        assert!(!logs.contains(key), "{logs}");
        assert!(!reply.contains(key), "{reply}");
    }
}
