//! [`ManagedInstances`] on EC2: whether an instance carries the tag
//! `opkit:managed=true` (DescribeInstances), for instance state-change
//! notifications.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::Filter;

use crate::packs::notify::ManagedInstances;
use opkit::BoxFuture;

impl ManagedInstances for Client {
    fn is_managed<'a>(
        &'a self,
        region: &'a str,
        instance: &'a str,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let ours = self.config().region().map(|r| r.as_ref().to_string());
            if ours.as_deref() != Some(region) {
                // An event of another region: this client cannot look it up.
                tracing::info!(
                    region,
                    instance,
                    "instance state change of another region: not posted"
                );
                return Ok(false);
            }
            let found = self
                .describe_instances()
                .instance_ids(instance)
                .filters(
                    Filter::builder()
                        .name("tag:opkit:managed")
                        .values("true")
                        .build(),
                )
                .send()
                .await;
            match found {
                Ok(out) => Ok(out
                    .reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .any(|i| i.instance_id() == Some(instance))),
                // A terminated instance ages out of DescribeInstances: not ours to tell.
                Err(e)
                    if e.as_service_error().and_then(|s| s.meta().code())
                        == Some("InvalidInstanceID.NotFound") =>
                {
                    Ok(false)
                }
                Err(e) => Err(aws_sdk_ec2::error::DisplayErrorContext(e).to_string()),
            }
        })
    }
}
