//! Creating the table as `template.yaml` defines it (`opkit init --store dynamodb`).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
};

use super::super::StoreError;
use super::keys::{GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SK, TTL};
use super::{backend, build_error, chain};

/// Creates `table` as the [module docs](super) describe (on-demand capacity, both
/// indexes with projection ALL, TTL on [`TTL`]) and waits until it is active.
/// Idempotent: an existing table, or TTL already on, is fine.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attribute_definitions()?))
        .set_key_schema(Some(key_schema(PK, SK)?))
        .global_secondary_indexes(index(GSI1, GSI1_PK, GSI1_SK)?)
        .global_secondary_indexes(index(GSI2, GSI2_PK, GSI2_SK)?)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(e) => return Err(backend("CreateTable", e)),
    }
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(std::time::Duration::from_secs(300))
        .await
        .map_err(|e| StoreError::Backend(format!("DynamoDB table {table}: {}", chain(&e))))?;
    enable_ttl(client, table).await
}

async fn enable_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| backend("DescribeTimeToLive", e))?;
    let already = described.time_to_live_description().is_some_and(|d| {
        d.attribute_name() == Some(TTL)
            && matches!(
                d.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )
    });
    if already {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(TTL)
        .enabled(true)
        .build()
        .map_err(build_error)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| backend("UpdateTimeToLive", e))?;
    Ok(())
}

fn attribute_definitions() -> Result<Vec<AttributeDefinition>, StoreError> {
    [PK, SK, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK]
        .into_iter()
        .map(|name| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        })
        .collect()
}

fn key_schema(hash: &str, range: &str) -> Result<Vec<KeySchemaElement>, StoreError> {
    [(hash, KeyType::Hash), (range, KeyType::Range)]
        .into_iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(build_error)
        })
        .collect()
}

fn index(name: &str, hash: &str, range: &str) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(key_schema(hash, range)?))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_error)
}
