//! [`ResponseUrl`]: where the bot posts a reply to a slash command or a click,
//! checked once, where a request's `response_url` is read
//! ([`crate::job::Job::from_slash_command`], [`crate::job::Job::from_block_actions`],
//! and a queued job as it is decoded). Every poster takes a `ResponseUrl`, so the bot
//! POSTs to no URL a request merely carries.
//!
//! Taken: `https://` on Slack's own hosts, [`SLACK_RESPONSE_HOSTS`] (Slack's
//! `hooks.slack.com`, and GovSlack's `hooks.slack-gov.com`), on the default port,
//! with no user name or password; and any URL on an origin registered with
//! [`allow_origin_of`] — the configured `SLACK_API_URL`'s, when it is not Slack's
//! (a fake Slack in tests, a local mock), registered by
//! [`crate::config::Config`]. Anything else is refused: `http://`, other hosts,
//! `https://hooks.slack.com@evil.example/` (that is a user name on another host),
//! IP literals, other ports.

use std::fmt;
use std::sync::RwLock;

use reqwest::Url;

/// The hosts Slack's `response_url`s are on: `hooks.slack.com` (Slack's docs,
/// "Handling user interaction" and "Implementing slash commands") and
/// `hooks.slack-gov.com` (GovSlack, whose Web API is `slack-gov.com/api`).
pub const SLACK_RESPONSE_HOSTS: [&str; 2] = ["hooks.slack.com", "hooks.slack-gov.com"];

/// Origins taken besides Slack's (scheme, host, port), from [`allow_origin_of`].
static EXTRA: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// A `response_url` the bot may post to. Built only by [`ResponseUrl::parse`].
/// It is a credential (anyone holding it may post in the conversation for 30
/// minutes): its `Debug` shows only its host.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResponseUrl(Url);

/// Why a `response_url` is refused. Shows the host at most, never the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseUrlError {
    /// Not a URL at all.
    #[error("the response_url is not a URL")]
    NotAUrl,
    /// A URL not on Slack's hosts (nor a registered origin).
    #[error(
        "the response_url is not Slack's (it must be https://hooks.slack.com/…; this one is {scheme}://{host})"
    )]
    NotSlack {
        /// Its scheme.
        scheme: String,
        /// Its host (and port, if one is given).
        host: String,
    },
    /// A user name or password before the host (`https://hooks.slack.com@evil/`).
    #[error("the response_url carries a user name or password")]
    UserInfo,
}

/// The origin of `url` (`http://127.0.0.1:3001`), if it has one.
fn origin(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// Takes `response_url`s on `base`'s origin too (the configured `SLACK_API_URL`,
/// when it is not Slack's: a fake Slack). An unparsable `base` adds nothing.
pub fn allow_origin_of(base: &str) {
    let Some(origin) = Url::parse(base).ok().as_ref().and_then(origin) else {
        return;
    };
    let mut extra = EXTRA.write().unwrap_or_else(|e| e.into_inner());
    if !extra.contains(&origin) {
        extra.push(origin);
    }
}

impl ResponseUrl {
    /// Checks `raw` (see the module's rules).
    pub fn parse(raw: &str) -> Result<Self, ResponseUrlError> {
        let url = Url::parse(raw).map_err(|_| ResponseUrlError::NotAUrl)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ResponseUrlError::UserInfo);
        }
        let slack = url.scheme() == "https"
            && url.port().is_none()
            && url
                .host_str()
                .is_some_and(|host| SLACK_RESPONSE_HOSTS.contains(&host));
        let registered = || {
            let extra = EXTRA.read().unwrap_or_else(|e| e.into_inner());
            origin(&url).is_some_and(|o| extra.contains(&o))
        };
        if slack || registered() {
            return Ok(Self(url));
        }
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => String::new(),
        };
        Err(ResponseUrlError::NotSlack {
            scheme: url.scheme().to_string(),
            host,
        })
    }

    /// The URL, to post to.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl TryFrom<String> for ResponseUrl {
    type Error = ResponseUrlError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<ResponseUrl> for String {
    fn from(url: ResponseUrl) -> String {
        url.0.into()
    }
}

impl fmt::Debug for ResponseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseUrl({}/***)", self.0.host_str().unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slacks_own_response_urls_are_taken() {
        for url in [
            "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN",
            "https://hooks.slack.com/actions/T3MDE/1/abc",
            "https://hooks.slack-gov.com/commands/T1/2/abc",
            "https://hooks.slack.com:443/commands/T1/2/abc",
        ] {
            assert_eq!(
                ResponseUrl::parse(url).map(|u| u.as_str().replace(":443", "")),
                Ok(url.replace(":443", ""))
            );
        }
    }

    #[test]
    fn anywhere_else_is_refused_naming_the_host_only() {
        // GIVEN the attacker's response_urls
        for (url, refused) in [
            (
                "http://hooks.slack.com/commands/T1/2/abc",
                ResponseUrlError::NotSlack {
                    scheme: "http".into(),
                    host: "hooks.slack.com".into(),
                },
            ),
            (
                "https://evil.example/commands/T1/2/abc",
                ResponseUrlError::NotSlack {
                    scheme: "https".into(),
                    host: "evil.example".into(),
                },
            ),
            (
                "https://hooks.slack.com@evil.example/commands/T1/2/abc",
                ResponseUrlError::UserInfo,
            ),
            (
                "https://user:pw@hooks.slack.com/commands/T1/2/abc",
                ResponseUrlError::UserInfo,
            ),
            (
                "https://hooks.slack.com.evil.example/commands/T1",
                ResponseUrlError::NotSlack {
                    scheme: "https".into(),
                    host: "hooks.slack.com.evil.example".into(),
                },
            ),
            (
                "https://169.254.169.254/latest/meta-data/",
                ResponseUrlError::NotSlack {
                    scheme: "https".into(),
                    host: "169.254.169.254".into(),
                },
            ),
            (
                "https://[::1]/x",
                ResponseUrlError::NotSlack {
                    scheme: "https".into(),
                    host: "[::1]".into(),
                },
            ),
            (
                "https://hooks.slack.com:8443/commands/T1",
                ResponseUrlError::NotSlack {
                    scheme: "https".into(),
                    host: "hooks.slack.com:8443".into(),
                },
            ),
            (
                "file:///etc/passwd",
                ResponseUrlError::NotSlack {
                    scheme: "file".into(),
                    host: String::new(),
                },
            ),
            ("hooks.slack.com/commands/T1", ResponseUrlError::NotAUrl),
        ] {
            // WHEN checked THEN refused, and the message shows no path (a credential)
            let err = ResponseUrl::parse(url).unwrap_err();
            assert_eq!(err, refused, "{url}");
            assert!(!err.to_string().contains("T1"), "{err}");
        }
    }

    #[test]
    fn a_registered_origin_is_taken_and_only_that_origin() {
        // GIVEN a fake Slack's origin, as SLACK_API_URL registers it
        allow_origin_of("http://127.0.0.1:1/api");
        // THEN its URLs are taken, and the same host on another port is not
        assert!(ResponseUrl::parse("http://127.0.0.1:1/response/r1").is_ok());
        assert!(ResponseUrl::parse("http://127.0.0.1:2/response/r1").is_err());
        assert!(ResponseUrl::parse("https://127.0.0.1:1/response/r1").is_err());
    }

    #[test]
    fn it_never_prints_and_round_trips_through_a_job() {
        let url = ResponseUrl::parse("https://hooks.slack.com/commands/T1/2/secret").unwrap();
        assert_eq!(format!("{url:?}"), "ResponseUrl(hooks.slack.com/***)");
        let json = serde_json::to_string(&url).unwrap();
        assert_eq!(serde_json::from_str::<ResponseUrl>(&json).unwrap(), url);
        assert!(serde_json::from_str::<ResponseUrl>("\"https://evil.example/x\"").is_err());
    }
}
