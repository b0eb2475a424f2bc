//! The key schema and item mapping: attribute and index names, how each kind of
//! item is keyed (see the [module docs](super)), and items to and from types.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::{CommittedReply, JobRecord, JobStatus, StoreError};
use super::ENDED_GRANT_RETENTION;
use crate::access::Grant;
use crate::audit::AuditRecord;
use crate::ids::{Role, UserId};

/// The table's partition key (string).
pub const PK: &str = "pk";
/// The table's sort key (string).
pub const SK: &str = "sk";
/// Index of grants by role and of audit records by user.
pub const GSI1: &str = "gsi1";
/// [`GSI1`]'s partition key (string).
pub const GSI1_PK: &str = "gsi1pk";
/// [`GSI1`]'s sort key (string).
pub const GSI1_SK: &str = "gsi1sk";
/// Index of grants by end time.
pub const GSI2: &str = "gsi2";
/// [`GSI2`]'s partition key (string).
pub const GSI2_PK: &str = "gsi2pk";
/// [`GSI2`]'s sort key (string).
pub const GSI2_SK: &str = "gsi2sk";
/// The TTL attribute (number, epoch seconds).
pub const TTL: &str = "ttl";

pub(super) const VERSION: &str = "version";
pub(super) const STATE: &str = "state";
/// A token unique to each state save and each added grant (S): a conditional put
/// whose answer was lost, and that the SDK sends again, fails its condition
/// against its own first write; the token tells that write from anyone else's.
pub(super) const WRITER: &str = "writer";
const GRANT: &str = "grant";
pub(super) const GRANTED_AT: &str = "granted_at";
/// Whether a grant's window start was announced (BOOL): what the expiry pass's
/// announcement is conditional on.
pub(super) const ANNOUNCED: &str = "announced";
pub(super) const RECORD: &str = "record";
pub(super) const STATUS: &str = "status";
pub(super) const HELD_UNTIL: &str = "held_until";
/// A done job's committed reply (JSON) and the queue message that ran it.
const REPLY: &str = "reply";
const DELIVERY: &str = "delivery";
/// The end-time key of a grant that has no end: after every real time.
const OPEN_ENDED: &str = "9999-12-31T23:59:59Z";

pub(super) type Item = HashMap<String, AttributeValue>;

// ---- keys and items (pure) ----

pub(super) const STATE_SK: &str = "STATE";
pub(super) const GRANT_SK_PREFIX: &str = "GRANT#";
pub(super) const GRANTS_PARTITION: &str = "GRANT";
pub(super) const JOB_SK: &str = "JOB";

pub(super) fn state_pk(script: &str) -> String {
    format!("STATE#{script}")
}

pub(super) fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}

/// One grant among the user's grants of `role` (several may coexist).
pub(super) fn grant_sk(role: &Role, id: uuid::Uuid) -> String {
    format!("{}{}", grant_role_prefix(role), id.simple())
}

/// The sort-key prefix of every grant of `role` (`GRANT#ops#`: not `GRANT#opsx…`).
pub(super) fn grant_role_prefix(role: &Role) -> String {
    format!("{GRANT_SK_PREFIX}{role}#")
}

pub(super) fn audit_pk(day: NaiveDate) -> String {
    format!("AUDIT#{}", day.format("%Y-%m-%d"))
}

pub(super) fn audit_user_pk(user: &UserId) -> String {
    format!("AUDITUSER#{user}")
}

pub(super) fn job_pk(job_id: &str) -> String {
    format!("JOB#{job_id}")
}

/// A time to the second, fixed width (years 0–9999), so keys sort by time.
pub(super) fn second_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A time to the millisecond, fixed width, so keys sort by time.
fn milli_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A time to the nanosecond: identifies one grant among re-grants of a role.
pub(super) fn nano_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// Epoch seconds, rounded up, for the TTL attribute.
fn ttl_value(t: DateTime<Utc>) -> AttributeValue {
    let secs = t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
    n(secs)
}

pub(super) fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.into(), s(pk)), (SK.into(), s(sk.into()))])
}

pub(super) fn grant_item(grant: &Grant) -> Result<Item, StoreError> {
    let (user, role) = (&grant.user, &grant.role);
    let ends = grant.ends_at.map_or(OPEN_ENDED.to_string(), second_key);
    let granted = nano_key(grant.granted_at);
    let id = grant.id.simple();
    let mut item = key(user_pk(user), grant_sk(role, grant.id));
    item.extend([
        (GRANT.into(), s(to_json(grant)?)),
        (GRANTED_AT.into(), s(granted.clone())),
        (
            ANNOUNCED.into(),
            AttributeValue::Bool(grant.start_announced),
        ),
        (GSI1_PK.into(), s(format!("ROLE#{role}"))),
        (GSI1_SK.into(), s(format!("USER#{user}#{id}"))),
        (GSI2_PK.into(), s(GRANTS_PARTITION)),
        (GSI2_SK.into(), s(format!("{ends}#{user}#{role}#{id}"))),
    ]);
    if let Some(ends_at) = grant.ends_at {
        item.insert(TTL.into(), ttl_value(ends_at + ENDED_GRANT_RETENTION));
    }
    Ok(item)
}

pub(super) fn audit_item(record: &AuditRecord, keep: Duration) -> Result<Item, StoreError> {
    let sk = format!("{}#{}", milli_key(record.at), record.id);
    let mut item = key(audit_pk(record.at.date_naive()), sk.clone());
    item.extend([
        (RECORD.into(), s(to_json(record)?)),
        (GSI1_PK.into(), s(audit_user_pk(&record.user))),
        (GSI1_SK.into(), s(sk)),
        (TTL.into(), ttl_value(record.at + keep)),
    ]);
    Ok(item)
}

pub(super) fn job_item(job_id: &str, record: &JobRecord) -> Item {
    let mut item = key(job_pk(job_id), JOB_SK);
    item.extend([
        (STATUS.into(), s(status_name(record.status))),
        (HELD_UNTIL.into(), n(record.until.timestamp_millis())),
        // Once `held_until` has passed the item decides nothing, so TTL may take it.
        (TTL.into(), ttl_value(record.until)),
    ]);
    if let Some(reply) = &record.reply {
        item.insert(DELIVERY.into(), s(reply.delivery.clone()));
        item.insert(REPLY.into(), s(reply.reply.clone()));
    }
    item
}

pub(super) fn status_name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Running => "running",
        JobStatus::Done => "done",
    }
}

pub(super) fn parse_job(item: &Item) -> Result<JobRecord, StoreError> {
    let status = match text(item, STATUS)? {
        "running" => JobStatus::Running,
        "done" => JobStatus::Done,
        other => return Err(corrupt(item, format!("unknown job status `{other}`"))),
    };
    let millis: i64 = number(item, HELD_UNTIL)?;
    let until = DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| corrupt(item, format!("`{HELD_UNTIL}` is out of range")))?;
    let reply = match (item.get(DELIVERY), item.get(REPLY)) {
        (None, None) => None,
        _ => Some(CommittedReply {
            delivery: text(item, DELIVERY)?.to_string(),
            reply: text(item, REPLY)?.to_string(),
        }),
    };
    Ok(JobRecord {
        status,
        until,
        reply,
    })
}

pub(super) fn parse_grant(item: &Item) -> Result<Grant, StoreError> {
    json(item, GRANT)
}

// ---- attribute values ----

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A string attribute, or [`StoreError::Corrupt`] naming the item.
fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        Some(_) => Err(corrupt(item, format!("`{name}` is not a string"))),
        None => Err(corrupt(item, format!("`{name}` is missing"))),
    }
}

/// A number attribute, or [`StoreError::Corrupt`] naming the item.
pub(super) fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value
            .parse()
            .map_err(|_| corrupt(item, format!("`{name}` is not a whole number: {value}"))),
        Some(_) => Err(corrupt(item, format!("`{name}` is not a number"))),
        None => Err(corrupt(item, format!("`{name}` is missing"))),
    }
}

/// A string attribute holding JSON, parsed.
pub(super) fn json<T: DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    serde_json::from_str(text(item, name)?)
        .map_err(|e| corrupt(item, format!("`{name}` does not parse: {e}")))
}

fn to_json(value: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

fn corrupt(item: &Item, detail: String) -> StoreError {
    let part = |name| match item.get(name) {
        Some(AttributeValue::S(value)) => value.as_str(),
        _ => "?",
    };
    StoreError::Corrupt {
        what: format!("DynamoDB item {} / {}", part(PK), part(SK)),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    fn grant(ends_at: Option<&str>) -> Grant {
        Grant {
            id: uuid::Uuid::nil(),
            user: UserId::parse("U1").unwrap(),
            role: Role::parse("ops").unwrap(),
            granted_by: None,
            granted_at: at("2027-01-15T08:00:00Z"),
            starts_at: None,
            ends_at: ends_at.map(at),
            channel: None,
            start_announced: false,
        }
    }

    fn string<'a>(item: &'a Item, name: &str) -> &'a str {
        item[name].as_s().unwrap()
    }

    #[test]
    fn time_keys_are_fixed_width_and_sort_by_time() {
        // GIVEN times with and without fractions, before and after 10:00
        let early = at("2027-01-15T09:59:59.999999Z");
        let late = at("2027-01-15T10:00:00Z");
        // THEN keys have one width and sort like the times
        assert_eq!(second_key(early), "2027-01-15T09:59:59Z");
        assert_eq!(milli_key(late), "2027-01-15T10:00:00.000Z");
        assert_eq!(milli_key(early).len(), milli_key(late).len());
        assert!(milli_key(early) < milli_key(late));
        assert!(second_key(late).as_str() < OPEN_ENDED);
    }

    #[test]
    fn grant_item_carries_both_index_keys_and_a_ttl_only_when_timed() {
        // GIVEN a timed and an open-ended grant
        let timed = grant_item(&grant(Some("2027-01-15T10:30:00.5Z"))).unwrap();
        let open = grant_item(&grant(None)).unwrap();
        // THEN the keys follow the table design
        assert_eq!(string(&timed, PK), "USER#U1");
        assert_eq!(
            string(&timed, SK),
            "GRANT#ops#00000000000000000000000000000000"
        );
        assert_eq!(string(&timed, GSI1_PK), "ROLE#ops");
        assert_eq!(
            string(&timed, GSI1_SK),
            "USER#U1#00000000000000000000000000000000"
        );
        assert_eq!(string(&timed, GSI2_PK), "GRANT");
        assert_eq!(
            string(&timed, GSI2_SK),
            "2027-01-15T10:30:00Z#U1#ops#00000000000000000000000000000000"
        );
        assert_eq!(
            string(&open, GSI2_SK),
            "9999-12-31T23:59:59Z#U1#ops#00000000000000000000000000000000"
        );
        assert_eq!(timed[ANNOUNCED].as_bool().ok(), Some(&false));
        // AND the TTL is a week after the end, rounded up to the second
        let week_later = at("2027-01-22T10:30:01Z").timestamp().to_string();
        assert_eq!(timed[TTL].as_n().unwrap(), &week_later);
        assert!(!open.contains_key(TTL));
    }

    #[test]
    fn audit_item_is_keyed_by_day_and_time_and_indexed_by_user() {
        let record = AuditRecord {
            id: uuid::Uuid::nil(),
            correlation_id: uuid::Uuid::nil(),
            at: at("2027-01-15T23:59:59.25Z"),
            user: UserId::parse("U9").unwrap(),
            channel: None,
            team: None,
            text: "help".into(),
            command: None,
            outcome: crate::audit::Outcome::Requested,
        };
        let item = audit_item(&record, Duration::days(90)).unwrap();
        let sk = "2027-01-15T23:59:59.250Z#00000000-0000-0000-0000-000000000000";
        assert_eq!(string(&item, PK), "AUDIT#2027-01-15");
        assert_eq!(string(&item, SK), sk);
        assert_eq!(string(&item, GSI1_PK), "AUDITUSER#U9");
        assert_eq!(string(&item, GSI1_SK), sk);
        let expires = at("2027-04-16T00:00:00Z").timestamp().to_string();
        assert_eq!(item[TTL].as_n().unwrap(), &expires);
    }

    #[test]
    fn job_items_read_back_and_bad_ones_are_named() {
        // GIVEN a stored claim
        let record = JobRecord {
            status: JobStatus::Running,
            until: at("2027-01-15T08:05:00.123Z"),
            reply: None,
        };
        let mut item = job_item("m-1", &record);
        // THEN it reads back, and a bad status is reported with the item's key
        assert_eq!(parse_job(&item).unwrap(), record);
        item.insert(STATUS.into(), s("paused"));
        let err = parse_job(&item).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("JOB#m-1 / JOB"), "{err}");
    }

    #[test]
    fn wrong_attribute_types_are_corrupt_not_panics() {
        let mut item = key(state_pk("queue"), STATE_SK);
        item.insert(VERSION.into(), s("three"));
        let err = number::<u64>(&item, VERSION).unwrap_err();
        assert!(err.to_string().contains("STATE#queue / STATE"), "{err}");
        assert!(matches!(
            text(&item, STATE),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
