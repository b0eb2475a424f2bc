//! Whose clock a typed time is read on: the asker's time zone.
//!
//! `from 22:00` and `schedule add … "daily 09:00"` mean 22:00 and 09:00 for the
//! person who typed them. Where that zone comes from is a port, [`ZoneSource`]:
//!
//! - deployed (the worker Lambda, `opkit serve`, `opkit worker`), Slack says: the
//!   user's `tz` from `users.info`, through [`CachedZones`] — one call per user
//!   an hour at most, in memory, so a warm worker container asks once and a cold
//!   one asks again (no table item, nothing to expire); a user Slack does not
//!   answer for, or whose zone it does not know, gets the deployment's default,
//!   `OPKIT_TIME_ZONE`, else UTC;
//! - locally (`opkit shell`, `opkit say`), [`FixedZone`]: `OPKIT_TIME_ZONE`, else
//!   the machine's zone (the shell's user ids are not Slack's);
//! - in tests, [`FixedZone`] too.
//!
//! Only commands that read a time ask ([`crate::engine::Ctx::asker_zone`]); the
//! rest never call Slack for it. A zone or an offset typed with the time always
//! wins ([`crate::timespec::parse_start`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::BoxFuture;
use crate::clock::SharedClock;
use crate::ids::UserId;
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
    /// `user`'s zone. Never fails: a zone that cannot be found is the
    /// deployment's default.
    fn zone_of<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, Tz>;
}

/// The same zone for everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedZone(pub Tz);

impl ZoneSource for FixedZone {
    fn zone_of<'a>(&'a self, _user: &'a UserId) -> BoxFuture<'a, Tz> {
        Box::pin(std::future::ready(self.0))
    }
}

/// Where a user's own zone is looked up: Slack's `users.info` (the user object's
/// `tz`, an IANA name such as `Europe/Paris`).
pub trait UserZoneLookup: Send + Sync {
    /// The zone name Slack holds for `user`: `Ok(None)` if it has none (bots,
    /// some guests), `Err` with the reason if the lookup failed.
    fn user_zone_name<'a>(
        &'a self,
        user: &'a UserId,
    ) -> BoxFuture<'a, Result<Option<String>, String>>;
}

/// Users' zones from a [`UserZoneLookup`], remembered for [`ZONE_TTL`] in
/// memory, with a default for users whose zone is not known.
pub struct CachedZones {
    lookup: Arc<dyn UserZoneLookup>,
    default: Tz,
    clock: SharedClock,
    cache: Mutex<HashMap<UserId, (Tz, DateTime<Utc>)>>,
}

impl CachedZones {
    /// Looks zones up with `lookup`; `default` for anyone it cannot place.
    pub fn new(lookup: Arc<dyn UserZoneLookup>, default: Tz, clock: SharedClock) -> Self {
        Self {
            lookup,
            default,
            clock,
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

    fn remember(&self, user: &UserId, zone: Tz, until: DateTime<Utc>) {
        let mut cache = self.cache.lock().expect("zone cache lock");
        if cache.len() >= MAX_CACHED_USERS && !cache.contains_key(user) {
            let now = self.clock.now();
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= MAX_CACHED_USERS {
                cache.clear();
            }
        }
        cache.insert(user.clone(), (zone, until));
    }
}

impl ZoneSource for CachedZones {
    fn zone_of<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, Tz> {
        Box::pin(async move {
            let now = self.clock.now();
            if let Some(zone) = self.cached(user, now) {
                return zone;
            }
            let (zone, ttl) = match self.lookup.user_zone_name(user).await {
                Ok(Some(name)) => match parse_zone(&name) {
                    Some(zone) => (zone, ZONE_TTL),
                    None => {
                        tracing::warn!(%user, zone = %crate::text::one_line(&name), "Slack gave a time zone that is not an IANA name; using the default");
                        (self.default, ZONE_TTL)
                    }
                },
                Ok(None) => (self.default, ZONE_TTL),
                Err(reason) => {
                    tracing::warn!(%user, %reason, "could not look up the user's time zone; using the default");
                    (self.default, FAILED_LOOKUP_TTL)
                }
            };
            self.remember(user, zone, now + ttl);
            zone
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers from a table and counts the calls.
    struct Table {
        zones: HashMap<&'static str, Result<Option<&'static str>, &'static str>>,
        calls: AtomicUsize,
    }

    impl UserZoneLookup for Table {
        fn user_zone_name<'a>(
            &'a self,
            user: &'a UserId,
        ) -> BoxFuture<'a, Result<Option<String>, String>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let answer = self.zones.get(user.as_str()).copied().unwrap_or(Ok(None));
            Box::pin(std::future::ready(
                answer
                    .map(|z| z.map(str::to_string))
                    .map_err(str::to_string),
            ))
        }
    }

    fn setup() -> (CachedZones, Arc<Table>, ManualClock) {
        let table = Arc::new(Table {
            zones: HashMap::from([
                ("UPARIS", Ok(Some("Europe/Paris"))),
                ("UODD", Ok(Some("Mars/Olympus"))),
                ("UDOWN", Err("ratelimited")),
            ]),
            calls: AtomicUsize::new(0),
        });
        let clock = ManualClock::at_unix(1_800_000_000);
        let zones = CachedZones::new(
            table.clone(),
            parse_zone("America/New_York").unwrap(),
            Arc::new(clock.clone()),
        );
        (zones, table, clock)
    }

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    #[tokio::test]
    async fn a_users_zone_comes_from_slack_once_an_hour() {
        // GIVEN a user Slack places in Paris
        let (zones, table, clock) = setup();
        // WHEN their zone is asked for three times within the hour
        for _ in 0..3 {
            assert_eq!(zones.zone_of(&user("UPARIS")).await.name(), "Europe/Paris");
        }
        // THEN Slack was asked once
        assert_eq!(table.calls.load(Ordering::SeqCst), 1);
        // AND again once the hour is over
        clock.advance(ZONE_TTL + Duration::seconds(1));
        assert_eq!(zones.zone_of(&user("UPARIS")).await.name(), "Europe/Paris");
        assert_eq!(table.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn users_slack_cannot_place_get_the_default() {
        let (zones, table, clock) = setup();
        // no zone, a zone that is not IANA's, a failed call: the default
        for id in ["UNOBODY", "UODD", "UDOWN"] {
            assert_eq!(zones.zone_of(&user(id)).await.name(), "America/New_York");
        }
        assert_eq!(table.calls.load(Ordering::SeqCst), 3);
        // a failure is retried after a minute, not an hour
        clock.advance(FAILED_LOOKUP_TTL + Duration::seconds(1));
        for id in ["UNOBODY", "UODD", "UDOWN"] {
            zones.zone_of(&user(id)).await;
        }
        assert_eq!(table.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let (zones, _, _) = setup();
        for i in 0..(MAX_CACHED_USERS + 5) {
            zones.zone_of(&user(&format!("U{i}"))).await;
        }
        assert!(zones.cache.lock().unwrap().len() <= MAX_CACHED_USERS);
    }
}
