//! [`AlarmTags`] on CloudWatch: an alarm's tags (ListTagsForResource on its
//! ARN), where its notification finds a `runbook` link. Needs
//! `cloudwatch:ListTagsForResource` on the alarms (template.yaml, the worker).

use aws_sdk_cloudwatch::Client;

use crate::packs::notify::AlarmTags;
use opkit::BoxFuture;

impl AlarmTags for Client {
    fn tags<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, Result<Vec<(String, String)>, String>> {
        Box::pin(async move {
            // arn:<partition>:cloudwatch:<region>:…: this client reads its own region.
            let region = arn.split(':').nth(3).unwrap_or_default();
            let ours = self.config().region().map(|r| r.as_ref().to_string());
            if ours.as_deref() != Some(region) {
                return Err(format!(
                    "the alarm is in {region}, this client reads {}",
                    ours.as_deref().unwrap_or("no region")
                ));
            }
            let out = self
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .map_err(|e| aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string())?;
            Ok(out
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect())
        })
    }
}
