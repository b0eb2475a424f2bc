//! Whose clock a typed time is read on: the asker's time zone.
//!
//! `from 22:00` and `schedule add … "daily 09:00"` mean 22:00 and 09:00 for the
//! person who typed them. Where that zone comes from is a port, [`ZoneSource`]:
//!
//! - deployed (the worker Lambda, `opkit serve`, `opkit worker`), Slack says:
//!   the user's `tz` from `users.info` (the bot's [`Directory`]), through
//!   [`SlackZones`] — one call per user an hour at most, kept in memory, so a
//!   warm worker container asks once and a cold one asks again (no table item,
//!   nothing to expire); a user Slack does not answer for, or whose zone it does
//!   not know, gets the deployment's default, `OPKIT_TIME_ZONE`, else UTC;
//! - without a bot token, and in tests, [`FixedZone`]: that default for all;
//! - locally (`opkit shell`, `opkit say`), [`FixedZone`] too: `OPKIT_TIME_ZONE`,
//!   else the machine's zone (the shell's user ids are not Slack's).
//!
//! Only commands that read a time ask ([`crate::engine::Ctx::asker_zone`]); the
//! rest never call Slack for it. A zone or an offset typed with the time always
//! wins ([`crate::timespec::parse_start`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::BoxFuture;
use crate::ids::UserId;
use crate::slack::Directory;
use crate::timespec::{Tz, parse_zone};

/// How long a user's zone is kept before Slack is asked again.
pub const ZONE_TTL: Duration = Duration::hours(1);

/// How long a failed lookup is remembered, so a Slack outage costs one call a
/// minute per user rather than one per command.
pub const FAILED_LOOKUP_TTL: Duration = Duration::minutes(1);

/// The most users one process remembers; past it, the cache starts again.
pub const MAX_CACHED_USERS: usize = 10_000;

/// The time zone a user's typed times are read in.
pub trait ZoneSource: Send + Sync {
    /// `user`'s zone at `now` (the bot's clock). Never fails: a zone that cannot
    /// be found is the deployment's default.
    fn zone_of<'a>(&'a self, user: &'a UserId, now: DateTime<Utc>) -> BoxFuture<'a, Tz>;
}

/// The same zone for everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedZone(pub Tz);

impl ZoneSource for FixedZone {
    fn zone_of<'a>(&'a self, _user: &'a UserId, _now: DateTime<Utc>) -> BoxFuture<'a, Tz> {
        Box::pin(std::future::ready(self.0))
    }
}

/// Users' zones from Slack (`users.info`'s `tz`, an IANA name such as
/// `Europe/Paris`), remembered for [`ZONE_TTL`] in memory, with a default for
/// users whose zone is not known.
pub struct SlackZones {
    directory: Arc<dyn Directory>,
    default: Tz,
    cache: Mutex<HashMap<UserId, (Tz, DateTime<Utc>)>>,
}

impl SlackZones {
    /// Looks zones up in `directory`; `default` for anyone it cannot place.
    pub fn new(directory: Arc<dyn Directory>, default: Tz) -> Self {
        Self {
            directory,
            default,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, user: &UserId, now: DateTime<Utc>) -> Option<Tz> {
        let cache = self.cache.lock().expect("zone cache lock");
        cache
            .get(user)
            .filter(|(_, until)| *until > now)
            .map(|(zone, _)| *zone)
    }

    fn remember(&self, user: &UserId, zone: Tz, now: DateTime<Utc>, ttl: Duration) {
        let mut cache = self.cache.lock().expect("zone cache lock");
        if cache.len() >= MAX_CACHED_USERS && !cache.contains_key(user) {
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= MAX_CACHED_USERS {
                cache.clear();
            }
        }
        cache.insert(user.clone(), (zone, now + ttl));
    }
}

impl ZoneSource for SlackZones {
    fn zone_of<'a>(&'a self, user: &'a UserId, now: DateTime<Utc>) -> BoxFuture<'a, Tz> {
        Box::pin(async move {
            if let Some(zone) = self.cached(user, now) {
                return zone;
            }
            let (zone, ttl) = match self.directory.user_info(user.as_str()).await {
                Ok(Some(found)) => match found.tz.as_deref().map(|tz| (tz, parse_zone(tz))) {
                    Some((_, Some(zone))) => (zone, ZONE_TTL),
                    Some((name, None)) => {
                        tracing::warn!(%user, zone = %crate::text::one_line(name), "Slack gave a time zone that is not an IANA name; using the default");
                        (self.default, ZONE_TTL)
                    }
                    None => (self.default, ZONE_TTL),
                },
                Ok(None) => (self.default, ZONE_TTL),
                Err(e) => {
                    tracing::warn!(%user, error = %e, "could not look up the user's time zone; using the default");
                    (self.default, FAILED_LOOKUP_TTL)
                }
            };
            self.remember(user, zone, now, ttl);
            zone
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::web::WebApiError;
    use crate::slack::{MemoryDirectory, SlackConversation, SlackUser};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    fn in_zone(id: &str, tz: Option<&str>) -> SlackUser {
        SlackUser {
            tz: tz.map(str::to_string),
            ..SlackUser::named(id, "someone")
        }
    }

    fn zones(directory: Arc<dyn Directory>) -> SlackZones {
        SlackZones::new(directory, parse_zone("America/New_York").unwrap())
    }

    #[tokio::test]
    async fn a_users_zone_comes_from_slack_once_an_hour() {
        // GIVEN a user Slack places in Paris
        let directory =
            Arc::new(MemoryDirectory::new().with_user(in_zone("UPARIS", Some("Europe/Paris"))));
        let zones = zones(directory.clone());
        // WHEN their zone is asked for three times within the hour
        for minutes in [0, 1, 59] {
            let now = t0() + Duration::minutes(minutes);
            assert_eq!(
                zones.zone_of(&user("UPARIS"), now).await.name(),
                "Europe/Paris"
            );
        }
        // THEN Slack was asked once
        assert_eq!(directory.lookups(), 1);
        // AND again once the hour is over
        let later = t0() + ZONE_TTL + Duration::seconds(1);
        assert_eq!(
            zones.zone_of(&user("UPARIS"), later).await.name(),
            "Europe/Paris"
        );
        assert_eq!(directory.lookups(), 2);
    }

    #[tokio::test]
    async fn users_slack_cannot_place_get_the_default() {
        let directory = Arc::new(
            MemoryDirectory::new()
                .with_user(in_zone("UBOT", None))
                .with_user(in_zone("UODD", Some("Mars/Olympus"))),
        );
        let zones = zones(directory.clone());
        // no such user, no zone, a zone that is not IANA's: the default
        for id in ["UNOBODY", "UBOT", "UODD"] {
            assert_eq!(
                zones.zone_of(&user(id), t0()).await.name(),
                "America/New_York"
            );
        }
        assert_eq!(directory.lookups(), 3);
    }

    /// A directory whose every call fails, counting them.
    struct Down(AtomicUsize);

    impl Directory for Down {
        fn user_info<'a>(
            &'a self,
            _user: &'a str,
        ) -> BoxFuture<'a, Result<Option<SlackUser>, WebApiError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(std::future::ready(Err(WebApiError::Slack {
                method: "users.info",
                error: "ratelimited".into(),
            })))
        }

        fn conversation_info<'a>(
            &'a self,
            _channel: &'a str,
        ) -> BoxFuture<'a, Result<Option<SlackConversation>, WebApiError>> {
            Box::pin(std::future::ready(Ok(None)))
        }
    }

    #[tokio::test]
    async fn a_failed_lookup_gives_the_default_and_is_retried_after_a_minute() {
        let down = Arc::new(Down(AtomicUsize::new(0)));
        let zones = zones(down.clone());
        for seconds in [0, 30] {
            let now = t0() + Duration::seconds(seconds);
            assert_eq!(
                zones.zone_of(&user("U1"), now).await.name(),
                "America/New_York"
            );
        }
        assert_eq!(down.0.load(Ordering::SeqCst), 1);
        let later = t0() + FAILED_LOOKUP_TTL + Duration::seconds(1);
        zones.zone_of(&user("U1"), later).await;
        assert_eq!(down.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let zones = zones(Arc::new(MemoryDirectory::new()));
        for i in 0..(MAX_CACHED_USERS + 5) {
            zones.zone_of(&user(&format!("U{i}")), t0()).await;
        }
        assert!(zones.cache.lock().unwrap().len() <= MAX_CACHED_USERS);
    }
}
