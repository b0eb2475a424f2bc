//! The watchlist is everyone's: one person fills at most their share of it.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use opkit::ids::UserId;
use opkit::store::StateStore;
use opkit::testing::TestBot;

use super::{super::CloudWatchState, MAX_WATCHED_PER_USER};

async fn home() -> SdkConfig {
    // Nothing is called: the refusal comes before any AWS call.
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        .load()
        .await
}

#[tokio::test]
async fn one_user_watches_at_most_their_share_of_the_watchlist() {
    // GIVEN a user who put the most alarms one may on the watchlist
    let sdk = home().await;
    let opts = crate::AwsPacksConfig::default();
    let t = TestBot::with(|b| crate::with_aws_packs(b, &sdk, &opts));
    let mut state = CloudWatchState::default();
    let flood = UserId::parse("UFLOOD").unwrap();
    for i in 0..MAX_WATCHED_PER_USER {
        let name = format!("alarm-{i}");
        state.watched.insert(name.clone());
        state
            .watchers
            .entry(name)
            .or_default()
            .insert(flood.clone());
    }
    let encoded =
        opkit::store::EncodedState::new("cloudwatch", serde_json::to_value(&state).unwrap())
            .unwrap();
    t.store.save("cloudwatch", &encoded, 0).await.unwrap();
    // WHEN they watch one more, new or someone else's (the same cap counts
    // both: review, joining was never counted against it)
    let mut theirs = state.clone();
    theirs.watched.insert("someone-elses".into());
    theirs
        .watchers
        .entry("someone-elses".into())
        .or_default()
        .insert(UserId::parse("UOTHER").unwrap());
    let encoded =
        opkit::store::EncodedState::new("cloudwatch", serde_json::to_value(&theirs).unwrap())
            .unwrap();
    t.store.save("cloudwatch", &encoded, 1).await.unwrap();
    for line in ["alarms watch another", "alarms watch someone-elses"] {
        let refused = t.text("UFLOOD", line).await;
        // THEN it is refused, naming the cap and the way out, and nothing changed
        assert!(
            refused.contains("You already watch 10 alarms"),
            "{line}: {refused}"
        );
        assert!(refused.contains("alarms unwatch"), "{refused}");
        let after: CloudWatchState = t.state("cloudwatch").await;
        assert_eq!(after, theirs);
    }
}
