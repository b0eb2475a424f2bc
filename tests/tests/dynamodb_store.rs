//! The DynamoDB persister against a real emulator (moto's server), with the real
//! SDK. Run through `bash infra/test.sh`; without
//! `AWS_ENDPOINT_URL` every test here fails, saying so.
//!
//! Each test makes its own table, so they run in parallel and in any order.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, ProjectionType, TimeToLiveStatus};
use chrono::{DateTime, Duration, Utc};
use opkit::access::Grant;
use opkit::audit::{AuditRecord, Outcome};
use opkit::clock::{Clock, ManualClock};
use opkit::ids::{Role, UserId};
use opkit::store::EncodedState;
use opkit::store::dynamodb::{self, DynamoStore};
use opkit::store::{AuditLog, Claim, GrantStore, JobClaims, StateStore, StoreError};
use opkit_tests::aws::{sdk_config, unique_name};
use serde_json::json;

/// 2027-01-15T08:00:00Z plus `h` hours.
fn t(h: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::hours(h)
}

async fn client() -> Client {
    Client::new(&sdk_config().await)
}

/// A store over a new table, its client, and the clock the store reads.
async fn fresh_store() -> (DynamoStore, Client, ManualClock) {
    let client = client().await;
    let table = unique_name("opkit-test");
    dynamodb::create_table(&client, &table)
        .await
        .expect("create table");
    let clock = ManualClock::new(t(24));
    let store = DynamoStore::new(client.clone(), table, Arc::new(clock.clone()));
    (store, client, clock)
}

async fn raw_item(
    client: &Client,
    table: &str,
    pk: &str,
    sk: &str,
) -> HashMap<String, AttributeValue> {
    client
        .get_item()
        .table_name(table)
        .key(dynamodb::PK, AttributeValue::S(pk.into()))
        .key(dynamodb::SK, AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item()
        .cloned()
        .unwrap_or_default()
}

fn grant(user: &str, role: &str, ends_at: Option<DateTime<Utc>>) -> Grant {
    Grant {
        id: uuid::Uuid::now_v7(),
        user: UserId::parse(user).unwrap(),
        role: Role::parse(role).unwrap(),
        granted_by: None,
        granted_at: t(0),
        starts_at: None,
        ends_at,
        channel: None,
        start_announced: false,
    }
}

fn record(user: &str, at: DateTime<Utc>, text: &str) -> AuditRecord {
    AuditRecord {
        id: uuid::Uuid::new_v4(),
        correlation_id: uuid::Uuid::new_v4(),
        at,
        user: UserId::parse(user).unwrap(),
        channel: None,
        team: None,
        text: text.into(),
        command: None,
        outcome: Outcome::Succeeded,
    }
}

#[tokio::test]
async fn dynamo_store_honours_the_store_contract() {
    let (store, _, _) = fresh_store().await;
    opkit::store::contract::check_all(&store).await;
}

#[tokio::test]
async fn concurrent_saves_lose_nothing() {
    // GIVEN 50 tasks each appending one item with load / modify / save-at-version,
    // retrying on conflict (what the bot does)
    let (store, _, _) = fresh_store().await;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    let loaded = store.load("counter").await.unwrap();
                    let mut items = loaded.value.unwrap_or(json!([]));
                    items.as_array_mut().unwrap().push(json!(i));
                    match store
                        .save(
                            "counter",
                            &EncodedState::new("counter", items.clone()).unwrap(),
                            loaded.version,
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(e) if e.is_conflict() => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // THEN every item is there exactly once, and every save made one version
    let loaded = store.load("counter").await.unwrap();
    let mut items: Vec<i64> = serde_json::from_value(loaded.value.unwrap()).unwrap();
    items.sort_unstable();
    assert_eq!(items, (0..50).collect::<Vec<_>>());
    assert_eq!(loaded.version, 50);
}

#[tokio::test]
async fn corrupt_state_is_reported_and_left_untouched() {
    // GIVEN a state item whose JSON does not parse, written behind the store's back
    let (store, client, _) = fresh_store().await;
    client
        .put_item()
        .table_name(store.table())
        .item(dynamodb::PK, AttributeValue::S("STATE#queue".into()))
        .item(dynamodb::SK, AttributeValue::S("STATE".into()))
        .item("version", AttributeValue::N("3".into()))
        .item("state", AttributeValue::S("{not json".into()))
        .send()
        .await
        .unwrap();
    let before = raw_item(&client, store.table(), "STATE#queue", "STATE").await;
    // WHEN it is loaded, and a first save is attempted
    let load = store.load("queue").await;
    let save = store
        .save("queue", &EncodedState::new("queue", json!({})).unwrap(), 0)
        .await;
    // THEN the load is Corrupt and names the key, the save changes nothing
    let err = load.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("STATE#queue"), "{err}");
    assert!(matches!(save, Err(StoreError::Conflict { .. })), "{save:?}");
    let after = raw_item(&client, store.table(), "STATE#queue", "STATE").await;
    assert_eq!(after, before);
}

/// The users whose grants have ended at `at`, sorted.
async fn ended_users(store: &DynamoStore, at: DateTime<Utc>) -> Vec<String> {
    let ended = store.grants_ended_by(at).await.unwrap();
    let mut users: Vec<String> = ended.into_iter().map(|g| g.user.to_string()).collect();
    users.sort();
    users
}

#[tokio::test]
async fn grants_ended_by_reads_the_end_time_index() {
    // GIVEN grants ending at hour 1, half a second after hour 3, and never
    let (store, client, _) = fresh_store().await;
    let half_past_3 = t(3) + Duration::milliseconds(500);
    for g in [
        grant("UA", "ops", Some(t(1))),
        grant("UB", "ops", Some(half_past_3)),
        grant("UC", "ops", None),
    ] {
        store.put_grant(&g).await.unwrap();
    }
    // AND an ended grant stored without index keys: only a scan would find it
    client
        .put_item()
        .table_name(store.table())
        .item(dynamodb::PK, AttributeValue::S("USER#UD".into()))
        .item(dynamodb::SK, AttributeValue::S("GRANT#ops".into()))
        .item(
            "grant",
            AttributeValue::S(serde_json::to_string(&grant("UD", "ops", Some(t(0)))).unwrap()),
        )
        .send()
        .await
        .unwrap();
    // THEN each end counts from its exact instant, open-ended grants never end,
    // and the unindexed item is not seen (the query is on gsi2, not a scan)
    assert!(ended_users(&store, t(0)).await.is_empty());
    assert_eq!(ended_users(&store, t(1)).await, ["UA"]);
    assert_eq!(ended_users(&store, t(3)).await, ["UA"]);
    assert_eq!(ended_users(&store, half_past_3).await, ["UA", "UB"]);
    assert_eq!(ended_users(&store, t(10_000)).await, ["UA", "UB"]);
    let ud = UserId::parse("UD").unwrap();
    assert_eq!(store.grants_for(&ud).await.unwrap().len(), 1);
    assert_eq!(store.all_grants().await.unwrap().len(), 3);
}

#[tokio::test]
async fn timed_grants_carry_a_ttl_a_week_after_their_end() {
    let (store, client, _) = fresh_store().await;
    let (ops, dba) = (grant("UA", "ops", Some(t(1))), grant("UA", "dba", None));
    store.put_grant(&ops).await.unwrap();
    store.put_grant(&dba).await.unwrap();
    // each grant is its own item: GRANT#<role>#<grant id>
    let sk = |g: &Grant| format!("GRANT#{}#{}", g.role, g.id.simple());
    let timed = raw_item(&client, store.table(), "USER#UA", &sk(&ops)).await;
    let open = raw_item(&client, store.table(), "USER#UA", &sk(&dba)).await;
    let week_after = (t(1) + Duration::days(7)).timestamp().to_string();
    assert_eq!(timed[dynamodb::TTL].as_n().unwrap(), &week_after);
    assert!(!open.contains_key(dynamodb::TTL), "open-ended grants stay");
}

#[tokio::test]
async fn recent_audit_reads_back_day_by_day_within_the_look_back() {
    // GIVEN records today, yesterday, three days ago and 40 days ago (the clock
    // reads hour 24, the next day)
    let (store, _, clock) = fresh_store().await;
    let today = clock.now();
    let appended = [
        record("UA", today - Duration::days(40), "too old"),
        record("UA", today - Duration::days(3), "three days ago"),
        record("UB", today - Duration::days(1), "yesterday"),
        record("UA", today - Duration::minutes(5), "today early"),
        record("UB", today, "today late"),
    ];
    for r in &appended {
        store.append(r).await.unwrap();
    }
    let texts = |records: Vec<AuditRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.text).collect()
    };
    // THEN the newest come first across days, the limit holds, and the look-back ends
    let all = texts(store.recent(None, 10).await.unwrap());
    assert_eq!(
        all,
        ["today late", "today early", "yesterday", "three days ago"]
    );
    let two = texts(store.recent(None, 2).await.unwrap());
    assert_eq!(two, ["today late", "today early"]);
    assert!(store.recent(None, 0).await.unwrap().is_empty());
    // AND a user's records come from the by-user index, including old ones
    let ua = UserId::parse("UA").unwrap();
    let mine = texts(store.recent(Some(&ua), 10).await.unwrap());
    assert_eq!(mine, ["today early", "three days ago", "too old"]);
}

#[tokio::test]
async fn audit_retention_is_configurable() {
    let (store, client, _) = fresh_store().await;
    let store = store.with_audit_retention(Duration::days(30));
    let r = record("UA", t(0), "help");
    store.append(&r).await.unwrap();
    let sk = format!("2027-01-15T08:00:00.000Z#{}", r.id);
    let item = raw_item(&client, store.table(), "AUDIT#2027-01-15", &sk).await;
    let expires = (t(0) + Duration::days(30)).timestamp().to_string();
    assert_eq!(item[dynamodb::TTL].as_n().unwrap(), &expires);
}

#[tokio::test]
async fn job_claims_hold_lapse_and_finish() {
    let (store, client, _) = fresh_store().await;
    let lease = Duration::seconds(30);
    // GIVEN a claimed job
    assert_eq!(
        store.claim("m-1", t(0), lease).await.unwrap(),
        Claim::Acquired
    );
    // THEN a redelivery within the lease is refused, naming the lease's end
    let again = store
        .claim("m-1", t(0) + Duration::seconds(10), lease)
        .await;
    assert_eq!(
        again.unwrap(),
        Claim::HeldElsewhere {
            until: t(0) + lease
        }
    );
    // AND after the lease (the worker died) it can be taken over
    let later = t(0) + Duration::seconds(31);
    assert_eq!(
        store.claim("m-1", later, lease).await.unwrap(),
        Claim::Acquired
    );
    // WHEN it is finished
    store
        .finish("m-1", later, Duration::days(14))
        .await
        .unwrap();
    // THEN no later delivery runs it again, and the item expires by TTL
    for days in [0, 1, 13] {
        let at = later + Duration::days(days);
        assert_eq!(
            store.claim("m-1", at, lease).await.unwrap(),
            Claim::AlreadyDone
        );
    }
    let item = raw_item(&client, store.table(), "JOB#m-1", "JOB").await;
    assert_eq!(item["status"].as_s().unwrap(), "done");
    let expires = (later + Duration::days(14)).timestamp().to_string();
    assert_eq!(item[dynamodb::TTL].as_n().unwrap(), &expires);
}

#[tokio::test]
async fn creating_the_table_twice_is_fine_and_enables_ttl() {
    // GIVEN a table created twice
    let client = client().await;
    let table = unique_name("opkit-test");
    dynamodb::create_table(&client, &table).await.unwrap();
    dynamodb::create_table(&client, &table).await.unwrap();
    // THEN TTL is on, on `ttl`
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some(dynamodb::TTL));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    // AND the table is on-demand with both indexes projecting everything
    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let described = described.table().unwrap();
    let billing = described
        .billing_mode_summary()
        .and_then(|b| b.billing_mode());
    assert_eq!(billing, Some(&BillingMode::PayPerRequest));
    let mut indexes: Vec<(&str, Vec<&str>, Option<&ProjectionType>)> = described
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            let keys = i.key_schema().iter().map(|k| k.attribute_name()).collect();
            let projection = i.projection().and_then(|p| p.projection_type());
            (i.index_name().unwrap(), keys, projection)
        })
        .collect();
    indexes.sort();
    let all = Some(&ProjectionType::All);
    assert_eq!(
        indexes,
        [
            (
                dynamodb::GSI1,
                vec![dynamodb::GSI1_PK, dynamodb::GSI1_SK],
                all
            ),
            (
                dynamodb::GSI2,
                vec![dynamodb::GSI2_PK, dynamodb::GSI2_SK],
                all
            ),
        ]
    );
}

#[tokio::test]
async fn sdk_errors_become_one_line_backend_errors() {
    // GIVEN a store over a table that does not exist
    let store = DynamoStore::new(
        client().await,
        unique_name("opkit-missing"),
        Arc::new(ManualClock::new(t(0))),
    );
    // WHEN it is used
    let err = store.load("queue").await.unwrap_err();
    // THEN the error is a Backend one naming the operation and the service's code,
    // on one line and without a Debug dump
    let text = err.to_string();
    assert!(matches!(err, StoreError::Backend(_)), "{text}");
    assert!(text.contains("GetItem"), "{text}");
    assert!(text.contains("ResourceNotFoundException"), "{text}");
    assert!(!text.contains('\n') && !text.contains('{'), "{text}");
}
