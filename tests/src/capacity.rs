//! What DynamoDB requests cost, reckoned from what the client sent and received.
//!
//! The requests are counted at the client (a [`FaultProxy`](crate::fault_proxy::FaultProxy)
//! in front of the emulator records each one, body and answer, with no fault
//! injected), so the count is what the real SDK sent. moto's `ConsumedCapacity` is
//! not size-based and it returns none for `TransactWriteItems`, so the capacity
//! units are reckoned here by DynamoDB's documented rules ("Read/write capacity
//! mode", "Item sizes", "Transactions: capacity management"):
//!
//! - an item's size is the sum of its attributes' names and values (strings and
//!   binary by their bytes; a number about one byte per two digits, plus one;
//!   booleans and nulls one byte);
//! - a write costs 1 write unit per KB of the item written (at least 1), twice
//!   that in `TransactWriteItems`; and 1 more per KB for each global secondary
//!   index the item is in (Opkit's table projects every attribute into its two
//!   indexes, `gsi1` and `gsi2`: an item is in one when it holds the index's key
//!   attributes), not doubled by a transaction;
//! - a strongly consistent read costs 1 read unit per 4 KB read (at least 1), an
//!   eventually consistent one half that; a `Query` counts the items it returned
//!   together, rounded up once.
//!
//! What the request alone cannot say is left at its least: an overwrite of a
//! larger item costs the larger size, and an `UpdateItem` or `DeleteItem` the size
//! of the item it changed (reckoned here from the key and values sent).
//!
//! A write DynamoDB [`refused`] — its condition failed, or its transaction was
//! cancelled (a conflict: optimistic versions make them common under contention)
//! — is counted at its table units (DynamoDB charges a failed conditional write,
//! and a transaction's writes are prepared before it is cancelled: an upper bound
//! for it) and without index writes (nothing was written). A request answered with
//! any other error (throttling, a server error) is counted at nothing.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::fault_proxy::Seen;

/// The DynamoDB operations (the names the proxy records).
pub const OPERATIONS: [&str; 10] = [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
];

/// The partition key attribute of each of the table's global secondary indexes
/// (README, "One DynamoDB table"; `opkit::store::dynamodb` creates them with
/// every attribute projected).
pub const INDEX_KEYS: [(&str, &str); 2] = [("gsi1pk", "gsi1sk"), ("gsi2pk", "gsi2sk")];

/// The DynamoDB requests among what a proxy saw (it may carry other services' too).
pub fn dynamodb(seen: &[Seen]) -> Vec<Seen> {
    seen.iter()
        .filter(|s| OPERATIONS.contains(&s.operation.as_str()))
        .cloned()
        .collect()
}

/// An item's size in bytes as DynamoDB counts it (an item in DynamoDB JSON:
/// `{"name": {"S": "…"}, …}`).
pub fn item_bytes(item: &Map<String, Value>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_bytes(value))
        .sum()
}

fn value_bytes(value: &Value) -> usize {
    let Some((kind, v)) = value.as_object().and_then(|v| v.iter().next()) else {
        return 1;
    };
    match kind.as_str() {
        "S" | "B" => v.as_str().map_or(0, str::len),
        "N" => v.as_str().map_or(0, |n| n.len().div_ceil(2) + 1),
        // Sets and documents: their elements, plus a byte each and three for the whole.
        "SS" | "BS" | "NS" | "L" => {
            3 + v.as_array().map_or(0, |elements| {
                elements
                    .iter()
                    .map(|e| {
                        1 + match kind.as_str() {
                            "SS" | "BS" => e.as_str().map_or(0, str::len),
                            "NS" => e.as_str().map_or(0, |n| n.len().div_ceil(2) + 1),
                            _ => value_bytes(e),
                        }
                    })
                    .sum::<usize>()
            })
        }
        "M" => {
            3 + v.as_object().map_or(0, |m| {
                m.iter()
                    .map(|(k, e)| 1 + k.len() + value_bytes(e))
                    .sum::<usize>()
            })
        }
        _ => 1,
    }
}

/// Capacity units, reads and writes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    /// Read units.
    pub read: f64,
    /// Write units to the table (transactions doubled).
    pub write: u64,
    /// Write units to its global secondary indexes.
    pub index_write: u64,
}

impl Units {
    /// Every write unit, the table's and its indexes'.
    pub fn all_writes(&self) -> u64 {
        self.write + self.index_write
    }
}

impl std::ops::Add for Units {
    type Output = Units;
    fn add(self, other: Units) -> Units {
        Units {
            read: self.read + other.read,
            write: self.write + other.write,
            index_write: self.index_write + other.index_write,
        }
    }
}

impl std::iter::Sum for Units {
    fn sum<I: Iterator<Item = Units>>(iter: I) -> Units {
        iter.fold(Units::default(), |a, b| a + b)
    }
}

fn kb(bytes: usize) -> u64 {
    (bytes.div_ceil(1024) as u64).max(1)
}

fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = (bytes.div_ceil(4096)).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// One item written, `times` over (2 in a transaction): the table's units and the
/// indexes'.
fn write_of(item: &Map<String, Value>, times: u64) -> Units {
    let size = kb(item_bytes(item));
    let indexes = INDEX_KEYS
        .iter()
        .filter(|(pk, sk)| item.contains_key(*pk) && item.contains_key(*sk))
        .count() as u64;
    Units {
        read: 0.0,
        write: times * size,
        index_write: indexes * size,
    }
}

/// What an update or a delete sent, as an item: its key and the values it sets.
fn changed_item(request: &Value) -> Map<String, Value> {
    let mut item = request["Key"].as_object().cloned().unwrap_or_default();
    if let Some(values) = request["ExpressionAttributeValues"].as_object() {
        item.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    item
}

/// One write of a request or of a transaction's element (`Put`, `Update`,
/// `Delete`, `ConditionCheck`), `times` over.
fn write_request(kind: &str, request: &Value, times: u64) -> Units {
    match kind {
        "Put" | "PutItem" => write_of(request["Item"].as_object().unwrap_or(&Map::new()), times),
        _ => {
            // Update, Delete and ConditionCheck: the key and values sent, at least
            // one unit (the changed item's own size is not in the request).
            let item = changed_item(request);
            Units {
                read: 0.0,
                write: times * kb(item_bytes(&item)),
                index_write: 0,
            }
        }
    }
}

/// The items of a read's answer: `Item` (GetItem) or `Items` (Query, Scan).
fn items_read(response: &Value) -> usize {
    let one = response["Item"].as_object().map_or(0, item_bytes);
    let many: usize = response["Items"].as_array().map_or(0, |items| {
        items
            .iter()
            .filter_map(Value::as_object)
            .map(item_bytes)
            .sum()
    });
    one + many
}

/// The error type of an answer (`ConditionalCheckFailedException`, …), if it
/// was one.
fn error_type(response: &Value) -> Option<&str> {
    let kind = response["__type"].as_str()?;
    Some(kind.rsplit('#').next().unwrap_or(kind))
}

/// Whether DynamoDB refused the request as asked: a condition failed, or the
/// transaction was cancelled.
pub fn refused(seen: &Seen) -> bool {
    let response: Value = serde_json::from_str(&seen.response).unwrap_or(Value::Null);
    matches!(
        error_type(&response),
        Some("ConditionalCheckFailedException" | "TransactionCanceledException")
    )
}

/// The capacity units one request consumed, from its body and its answer.
pub fn units(seen: &Seen) -> Units {
    let request: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
    let response: Value = serde_json::from_str(&seen.response).unwrap_or(Value::Null);
    match error_type(&response) {
        None => asked(seen, &request, &response),
        Some(_) if refused(seen) => Units {
            index_write: 0,
            ..asked(seen, &request, &Value::Null)
        },
        Some(_) => Units::default(),
    }
}

/// The units of `request` done as asked, `response` its answer.
fn asked(seen: &Seen, request: &Value, response: &Value) -> Units {
    let consistent = request["ConsistentRead"].as_bool().unwrap_or(false);
    match seen.operation.as_str() {
        "PutItem" | "UpdateItem" | "DeleteItem" => {
            let kind = seen.operation.trim_end_matches("Item");
            write_request(kind, request, 1)
        }
        "TransactWriteItems" => request["TransactItems"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|t| t.as_object()?.iter().next())
                    .map(|(kind, element)| write_request(kind, element, 2))
                    .sum::<Units>()
            })
            .unwrap_or_default(),
        "BatchWriteItem" => request["RequestItems"]
            .as_object()
            .map(|tables| {
                tables
                    .values()
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(|r| r.as_object()?.iter().next())
                    .map(|(kind, element)| match kind.as_str() {
                        "PutRequest" => write_request("Put", element, 1),
                        _ => write_request("Delete", element, 1),
                    })
                    .sum::<Units>()
            })
            .unwrap_or_default(),
        "GetItem" | "Query" | "Scan" => Units {
            read: read_units(items_read(response), consistent),
            ..Units::default()
        },
        "BatchGetItem" | "TransactGetItems" => {
            // Each item read on its own: a transaction's strongly consistent and doubled.
            let items: Vec<usize> = response["Responses"]
                .as_object()
                .map(|tables| {
                    tables
                        .values()
                        .filter_map(Value::as_array)
                        .flatten()
                        .filter_map(Value::as_object)
                        .map(item_bytes)
                        .collect()
                })
                .or_else(|| {
                    response["Responses"].as_array().map(|rs| {
                        rs.iter()
                            .map(|r| r["Item"].as_object().map_or(0, item_bytes))
                            .collect()
                    })
                })
                .unwrap_or_default();
            let read = if seen.operation == "TransactGetItems" {
                items.iter().map(|&b| 2.0 * read_units(b, true)).sum()
            } else {
                items.iter().map(|&b| read_units(b, consistent)).sum()
            };
            Units {
                read,
                ..Units::default()
            }
        }
        _ => Units::default(),
    }
}

/// How many of each operation, by name.
pub fn by_operation(seen: &[Seen]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for s in seen {
        *counts.entry(s.operation.clone()).or_default() += 1;
    }
    counts
}

/// DynamoDB on-demand prices in us-east-1 (the ones README and infra/DEPLOY.md
/// use), dollars per million units.
pub mod price {
    /// Per million read request units.
    pub const READ_PER_MILLION: f64 = 0.125;
    /// Per million write request units.
    pub const WRITE_PER_MILLION: f64 = 0.625;
}

/// What `read` and `write` units per command (all writes, indexes' included)
/// cost per million commands, on demand (dollars).
pub fn on_demand_per_million(read: f64, write: f64) -> f64 {
    read * price::READ_PER_MILLION + write * price::WRITE_PER_MILLION
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seen(operation: &str, body: Value, response: Value) -> Seen {
        Seen {
            operation: operation.to_string(),
            at: std::time::Instant::now(),
            fault: None,
            body: body.to_string(),
            response: response.to_string(),
            upstream: None,
        }
    }

    #[test]
    fn item_size_counts_names_and_values() {
        // "pk"(2) + "STATE#q"(7) + "n"(1) + 3 digits (2 + 1) + "ok"(2) + a bool (1)
        let item = json!({"pk": {"S": "STATE#q"}, "n": {"N": "123"}, "ok": {"BOOL": true}});
        assert_eq!(item_bytes(item.as_object().unwrap()), 2 + 7 + 1 + 3 + 2 + 1);
        let list = json!({"l": {"L": [{"S": "ab"}, {"N": "1"}]}});
        // "l" + 3 + (1 + 2) + (1 + 2)
        assert_eq!(item_bytes(list.as_object().unwrap()), 1 + 3 + 3 + 3);
    }

    #[test]
    fn writes_round_up_to_the_kb_and_transactions_double() {
        // GIVEN an item of 1,500 bytes and one in an index
        let big = json!({"pk": {"S": "x".repeat(1498)}});
        let indexed = json!({"pk": {"S": "A"}, "gsi1pk": {"S": "B"}, "gsi1sk": {"S": "C"}});
        // WHEN one is put alone and both in a transaction
        let put = units(&seen("PutItem", json!({"Item": big}), json!({})));
        let transaction = units(&seen(
            "TransactWriteItems",
            json!({"TransactItems": [{"Put": {"Item": big}}, {"Put": {"Item": indexed}}]}),
            json!({}),
        ));
        // THEN the put is 2 units; the transaction 2 × (2 + 1), and 1 index write
        assert_eq!(
            put,
            Units {
                read: 0.0,
                write: 2,
                index_write: 0
            }
        );
        assert_eq!(transaction.write, 6);
        assert_eq!(transaction.index_write, 1);
        assert_eq!(transaction.all_writes(), 7);
    }

    #[test]
    fn a_refused_write_is_charged_to_the_table_only() {
        // GIVEN a transaction of an indexed item, cancelled (a version conflict),
        // and a put refused by its condition
        let indexed = json!({"pk": {"S": "A"}, "gsi1pk": {"S": "B"}, "gsi1sk": {"S": "C"}});
        let transaction = json!({"TransactItems": [{"Put": {"Item": indexed}}]});
        let cancelled = seen(
            "TransactWriteItems",
            transaction.clone(),
            json!({"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"}),
        );
        let conditional = seen(
            "PutItem",
            json!({"Item": indexed}),
            json!({"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}),
        );
        let throttled = seen(
            "TransactWriteItems",
            transaction,
            json!({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException"}),
        );
        // THEN both refusals cost their table units and no index write
        assert!(refused(&cancelled) && refused(&conditional));
        assert_eq!(
            (units(&cancelled).write, units(&cancelled).index_write),
            (2, 0)
        );
        assert_eq!(
            (units(&conditional).write, units(&conditional).index_write),
            (1, 0)
        );
        // AND a request not served costs nothing and is no refusal
        assert!(!refused(&throttled));
        assert_eq!(units(&throttled), Units::default());
    }

    #[test]
    fn reads_count_what_came_back_by_the_4_kb() {
        let small = json!({"pk": {"S": "a"}});
        let five_kb = json!({"pk": {"S": "x".repeat(5000)}});
        let get = |consistent, item: &Value| {
            units(&seen(
                "GetItem",
                json!({"ConsistentRead": consistent}),
                json!({"Item": item}),
            ))
            .read
        };
        assert_eq!(get(true, &small), 1.0);
        assert_eq!(get(false, &small), 0.5);
        assert_eq!(get(true, &five_kb), 2.0);
        // An item that is not there still costs the least read.
        assert_eq!(
            units(&seen("GetItem", json!({"ConsistentRead": true}), json!({}))).read,
            1.0
        );
        // A query's items are added up, then rounded once.
        let query = units(&seen(
            "Query",
            json!({"ConsistentRead": true}),
            json!({"Items": [small, small, small]}),
        ));
        assert_eq!(query.read, 1.0);
    }

    #[test]
    fn only_dynamodb_requests_are_kept_and_counted() {
        let all = [
            seen("GetItem", json!({}), json!({})),
            seen("SendMessage", json!({}), json!({})),
            seen("GetItem", json!({}), json!({})),
            seen("TransactWriteItems", json!({}), json!({})),
        ];
        let kept = dynamodb(&all);
        assert_eq!(kept.len(), 3);
        let counts = by_operation(&kept);
        assert_eq!(counts["GetItem"], 2);
        assert_eq!(counts["TransactWriteItems"], 1);
    }

    #[test]
    fn cost_per_million_at_on_demand_prices() {
        // 2 × $0.125 + 11 × $0.625
        assert!((on_demand_per_million(2.0, 11.0) - 7.125).abs() < 1e-9);
    }
}
