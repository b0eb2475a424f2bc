//! A change that posts nothing says exactly why (tester M4: an unmanaged
//! instance and a state nobody hears both read "no channel is subscribed").

use std::sync::Arc;

use chrono::Duration;
use opkit::testing::ADMIN;

use super::incident::Why;
use super::tests::{change, instance_change, rig};
use super::*;
use crate::packs::notify::event::AlarmState;

#[tokio::test]
async fn an_alarm_change_that_posts_nothing_names_its_reason() {
    let r = rig();
    let at = r.t.now();
    // No subscription at all
    let out = r.notify(&change("api-5xx", "OK", "ALARM", at)).await;
    assert_eq!(out.quiet, Some(Why::NoSubscriber));
    // Subscribed with the default states (ALARM and OK): not to INSUFFICIENT_DATA
    r.t.text(ADMIN, "alarms subscribe api-").await;
    let at = at + Duration::minutes(1);
    let out = r
        .notify(&change("api-latency", "OK", "INSUFFICIENT_DATA", at))
        .await;
    assert_eq!(
        out.quiet,
        Some(Why::NotThisState(AlarmState::InsufficientData))
    );
    assert_eq!(
        Why::NotThisState(AlarmState::InsufficientData).to_string(),
        "the channels subscribed to this alarm do not hear its changes into INSUFFICIENT_DATA"
    );
    // A change to OK that follows no ALARM (and no incident)
    let out = r
        .notify(&change("api-cpu", "INSUFFICIENT_DATA", "OK", at))
        .await;
    assert_eq!(out.quiet, Some(Why::NotNews), "{out:?}");
}

/// Every instance is managed, or none is.
struct Managed(bool);

impl ManagedInstances for Managed {
    fn is_managed<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> opkit::BoxFuture<'a, Result<bool, String>> {
        Box::pin(std::future::ready(Ok(self.0)))
    }
}

#[tokio::test]
async fn an_instance_change_that_posts_nothing_names_its_reason() {
    let mut r = rig();
    let at = r.t.now();
    // No EC2 client to look up the tag
    let out = r.notify(&instance_change("i-0aaa", "stopped", at)).await;
    assert_eq!(out.quiet, Some(Why::NoInstanceLookup));
    // A managed instance, but no channel ran `ec2 subscribe`
    let notifier = r.notifier.clone();
    r.notifier = notifier.clone().with_instances(Arc::new(Managed(true)));
    let out = r
        .notify(&instance_change(
            "i-0aaa",
            "stopped",
            at + Duration::seconds(1),
        ))
        .await;
    assert_eq!(out.quiet, Some(Why::NoInstanceSubscriber));
    // Subscribed, but the instance is not tagged opkit:managed=true
    r.notifier = notifier.with_instances(Arc::new(Managed(false)));
    r.t.text(ADMIN, "ec2 subscribe").await;
    let out = r
        .notify(&instance_change(
            "i-0aaa",
            "stopped",
            at + Duration::seconds(2),
        ))
        .await;
    assert_eq!(out.quiet, Some(Why::NotManaged));
    assert!(Why::NotManaged.to_string().contains("opkit:managed=true"));
}
