use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::*;
use crate::store::memory::MemoryStore;
use crate::store::{EncodedState, StateStore, StoreError};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn role(name: &str) -> Role {
    Role::parse(name).unwrap()
}

fn link(role_name: &str, group: &str) -> RoleLink {
    RoleLink {
        role: role(role_name),
        group: UserGroupId::parse(group).unwrap(),
        handle: Some("ops-oncall".into()),
        linked_by: user("UADMIN"),
        linked_at: t0(),
    }
}

/// A store holding `links`, a Slack with `S1` = {U1, U2}, and the resolver.
async fn setup(links: &[RoleLink]) -> (Arc<MemoryStore>, Arc<MemoryUserGroups>, GroupRoles) {
    let store = Arc::new(MemoryStore::new());
    let state = RoleLinks {
        links: links.to_vec(),
    };
    let state = EncodedState::new(LINKS_SCRIPT, serde_json::to_value(state).unwrap()).unwrap();
    store.save(LINKS_SCRIPT, &state, 0).await.unwrap();
    let slack = Arc::new(MemoryUserGroups::new());
    slack.set_members("S1", &["U1", "U2"]);
    let groups = GroupRoles::new(store.clone(), Some(slack.clone()));
    (store, slack, groups)
}

fn roles_of(holdings: &GroupHoldings) -> Vec<String> {
    holdings.held.iter().map(|l| l.role.to_string()).collect()
}

#[tokio::test]
async fn a_member_holds_the_role_and_slack_is_asked_once_a_minute() {
    // GIVEN ops linked to S1, whose members are U1 and U2
    let (_, slack, groups) = setup(&[link("ops", "S1")]).await;
    // WHEN U1 and then U3 are looked at, within the minute
    let u1 = groups.of_user(&user("U1"), None, t0()).await.unwrap();
    let u3 = groups
        .of_user(&user("U3"), None, t0() + Duration::seconds(59))
        .await
        .unwrap();
    // THEN U1 holds ops, U3 does not, and Slack was asked once
    assert_eq!(roles_of(&u1), ["ops"]);
    assert!(u3.held.is_empty() && u3.unverified.is_empty());
    assert_eq!(slack.lookups(), 1);
}

#[tokio::test]
async fn someone_taken_out_of_the_group_loses_the_role_when_the_minute_is_up() {
    let (_, slack, groups) = setup(&[link("ops", "S1")]).await;
    assert_eq!(
        roles_of(&groups.of_user(&user("U2"), None, t0()).await.unwrap()),
        ["ops"]
    );
    // WHEN the rotation moves on: U2 leaves, U3 joins
    slack.set_members("S1", &["U1", "U3"]);
    // THEN within the minute the cached answer stands
    let just_before = t0() + MEMBERSHIP_TTL - Duration::seconds(1);
    let u2 = groups
        .of_user(&user("U2"), None, just_before)
        .await
        .unwrap();
    assert_eq!(roles_of(&u2), ["ops"]);
    // AND once it is up, U2 no longer holds ops and U3 does
    let after = t0() + MEMBERSHIP_TTL;
    assert!(
        groups
            .of_user(&user("U2"), None, after)
            .await
            .unwrap()
            .held
            .is_empty()
    );
    assert_eq!(
        roles_of(&groups.of_user(&user("U3"), None, after).await.unwrap()),
        ["ops"]
    );
    assert_eq!(slack.lookups(), 2);
}

#[tokio::test]
async fn a_slack_failure_gives_nothing_is_kept_briefly_then_asked_again() {
    let (_, slack, groups) = setup(&[link("ops", "S1")]).await;
    slack.fail_with(Some("fatal_error"));
    // WHEN Slack fails for a member
    let got = groups.of_user(&user("U1"), None, t0()).await.unwrap();
    // THEN the role is not held, and the link is listed as unverified with the code
    assert!(got.held.is_empty());
    assert_eq!(got.unverified.len(), 1);
    assert_eq!(got.unverified[0].reason, "fatal_error");
    assert_eq!(got.unverified[0].link, link("ops", "S1"));
    // AND Slack answering again is seen only after FAILED_LOOKUP_TTL
    slack.fail_with(None);
    let soon = t0() + FAILED_LOOKUP_TTL - Duration::seconds(1);
    assert!(
        groups
            .of_user(&user("U1"), None, soon)
            .await
            .unwrap()
            .held
            .is_empty()
    );
    assert_eq!(slack.lookups(), 1);
    let later = t0() + FAILED_LOOKUP_TTL;
    assert_eq!(
        roles_of(&groups.of_user(&user("U1"), None, later).await.unwrap()),
        ["ops"]
    );
}

#[tokio::test]
async fn without_a_bot_token_a_linked_group_gives_nobody_its_role() {
    let (store, _, _) = setup(&[link("ops", "S1")]).await;
    let groups = GroupRoles::new(store, None);
    assert!(!groups.can_look_up());
    let got = groups.of_user(&user("U1"), None, t0()).await.unwrap();
    assert!(got.held.is_empty());
    assert!(got.unverified[0].reason.contains("SLACK_BOT_TOKEN"));
}

#[tokio::test]
async fn a_deleted_group_gives_nobody_its_role_and_is_not_a_failure() {
    let (_, slack, groups) = setup(&[link("ops", "S1")]).await;
    slack.remove("S1");
    let got = groups.of_user(&user("U1"), None, t0()).await.unwrap();
    assert_eq!(got, GroupHoldings::default());
    assert_eq!(
        groups
            .membership(&UserGroupId::parse("S1").unwrap(), t0())
            .await,
        Membership::NoSuchGroup
    );
}

#[tokio::test]
async fn only_groups_linked_to_wanted_roles_are_asked_about() {
    // GIVEN ops linked to S1 and deploy linked to S2
    let (_, slack, groups) = setup(&[link("ops", "S1"), link("deploy", "S2")]).await;
    slack.set_members("S2", &["U1"]);
    // WHEN only deploy would help
    let wanted: BTreeSet<Role> = [role("deploy")].into();
    let got = groups
        .of_user(&user("U1"), Some(&wanted), t0())
        .await
        .unwrap();
    // THEN only S2 was asked about
    assert_eq!(roles_of(&got), ["deploy"]);
    assert_eq!(slack.lookups(), 1);
    // AND nothing wanted asks nothing
    let none = BTreeSet::new();
    assert_eq!(
        groups
            .of_user(&user("U1"), Some(&none), t0())
            .await
            .unwrap(),
        GroupHoldings::default()
    );
    assert_eq!(slack.lookups(), 1);
}

#[tokio::test]
async fn links_are_read_once_a_minute_unless_forgotten() {
    let (store, _, groups) = setup(&[link("ops", "S1")]).await;
    assert_eq!(groups.links(t0()).await.unwrap().links.len(), 1);
    // WHEN another process adds a link
    let two = RoleLinks {
        links: vec![link("ops", "S1"), link("deploy", "S2")],
    };
    let state = EncodedState::new(LINKS_SCRIPT, serde_json::to_value(two).unwrap()).unwrap();
    store.save(LINKS_SCRIPT, &state, 1).await.unwrap();
    // THEN this one sees it when its minute is up, or at once once told to forget
    let soon = t0() + LINKS_TTL - Duration::seconds(1);
    assert_eq!(groups.links(soon).await.unwrap().links.len(), 1);
    assert_eq!(groups.links(t0() + LINKS_TTL).await.unwrap().links.len(), 2);
    groups.forget_links();
    assert_eq!(groups.links(soon).await.unwrap().links.len(), 2);
}

#[tokio::test]
async fn links_that_do_not_read_back_are_a_corrupt_store_not_an_empty_list() {
    let store = Arc::new(MemoryStore::new());
    let state = EncodedState::new(LINKS_SCRIPT, json!({"links": "nope"})).unwrap();
    store.save(LINKS_SCRIPT, &state, 0).await.unwrap();
    let groups = GroupRoles::new(store, Some(Arc::new(MemoryUserGroups::new())));
    let err = groups.of_user(&user("U1"), None, t0()).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[test]
fn handles_come_from_the_mention_label_and_only_if_they_look_like_one() {
    assert_eq!(
        handle_from_label(Some("@ops-oncall")).as_deref(),
        Some("ops-oncall")
    );
    assert_eq!(
        handle_from_label(Some("sre.team")).as_deref(),
        Some("sre.team")
    );
    assert_eq!(handle_from_label(Some("@")), None);
    assert_eq!(handle_from_label(Some("@a b")), None);
    assert_eq!(handle_from_label(Some("<!channel>")), None);
    assert_eq!(handle_from_label(None), None);
}

#[test]
fn a_group_is_shown_by_its_handle_as_text_never_as_a_live_mention() {
    let mut l = link("ops", "S1");
    assert_eq!(l.group_name(), "@ops-oncall");
    l.handle = None;
    assert_eq!(l.group_name(), "the user group `S1`");
}
