//! EventBridge events for the notification tests, made from the samples EventBridge
//! documents (`events/notify/`): the one place the end-to-end tests build them, so
//! each test sends the shape the worker reads, changed only where it says.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// "CloudWatch Alarm State Change", as the CloudWatch user guide shows it.
pub const ALARM_EVENT: &str = include_str!("../../events/notify/alarm_state_change.json");
/// "EC2 Instance State-change Notification", as the EventBridge reference shows it.
pub const INSTANCE_EVENT: &str = include_str!("../../events/notify/ec2_state_change.json");

/// The documented alarm event for the alarm `name` going from `previous` to `state`
/// at `at` (its own event id; its `resources` naming this alarm).
pub fn alarm_change(name: &str, previous: &str, state: &str, at: DateTime<Utc>) -> String {
    let mut event: Value = serde_json::from_str(ALARM_EVENT).expect("the sample is JSON");
    event["id"] = format!("{name}-{state}-{}", at.timestamp_millis()).into();
    event["resources"] = serde_json::json!([format!(
        "arn:aws:cloudwatch:{}:{}:alarm:{name}",
        event["region"].as_str().unwrap_or_default(),
        event["account"].as_str().unwrap_or_default()
    )]);
    event["detail"]["alarmName"] = name.into();
    event["detail"]["previousState"]["value"] = previous.into();
    event["detail"]["state"]["value"] = state.into();
    event["detail"]["state"]["timestamp"] =
        at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string().into();
    event.to_string()
}

/// The documented instance event for `instance` entering `state` at `at`, in
/// `region` (the sample's account).
pub fn instance_change(region: &str, instance: &str, state: &str, at: DateTime<Utc>) -> String {
    let mut event: Value = serde_json::from_str(INSTANCE_EVENT).expect("the sample is JSON");
    let account = event["account"].as_str().unwrap_or_default().to_string();
    event["id"] = format!("{instance}-{state}-{}", at.timestamp_millis()).into();
    event["region"] = region.into();
    event["time"] = at.format("%Y-%m-%dT%H:%M:%SZ").to_string().into();
    event["resources"] = serde_json::json!([format!(
        "arn:aws:ec2:{region}:{account}:instance/{instance}"
    )]);
    event["detail"]["instance-id"] = instance.into();
    event["detail"]["state"] = state.into();
    event.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_asked_changes() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let alarm: Value =
            serde_json::from_str(&alarm_change("api-5xx", "OK", "ALARM", at)).unwrap();
        let sample: Value = serde_json::from_str(ALARM_EVENT).unwrap();
        assert_eq!(alarm["detail"]["alarmName"], "api-5xx");
        assert_eq!(
            alarm["detail"]["state"]["timestamp"],
            "2027-01-15T08:00:00.000+0000"
        );
        assert_eq!(
            alarm["resources"][0],
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-5xx"
        );
        assert_eq!(
            alarm["detail"]["configuration"],
            sample["detail"]["configuration"]
        );
        let instance: Value =
            serde_json::from_str(&instance_change("eu-west-1", "i-0abc", "running", at)).unwrap();
        assert_eq!(instance["region"], "eu-west-1");
        assert_eq!(instance["time"], "2027-01-15T08:00:00Z");
        assert_eq!(instance["detail"]["state"], "running");
        assert_eq!(instance["source"], "aws.ec2");
    }
}
