//! The Slack app manifest (`infra/manifest.yaml`) asks for every bot scope the
//! Web API methods the bot calls need (Slack's method reference, "Scopes"): an
//! app installed from it never meets `missing_scope`.

use serde_norway::Value;

/// Each Web API method the bot calls, and the bot scopes it needs.
const METHODS: &[(&str, &[&str])] = &[
    ("chat.postMessage", &["chat:write"]),
    ("chat.postEphemeral", &["chat:write"]),
    ("chat.update", &["chat:write"]),
    ("files.getUploadURLExternal", &["files:write"]),
    ("files.completeUploadExternal", &["files:write"]),
    ("users.info", &["users:read"]),
    // Public and private channels.
    ("conversations.info", &["channels:read", "groups:read"]),
    (opkit::groups::USERS_LIST_METHOD, &["usergroups:read"]),
];

fn bot_scopes() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/manifest.yaml");
    let text = std::fs::read_to_string(path).expect("read infra/manifest.yaml");
    let manifest: Value = serde_norway::from_str(&text).expect("the manifest is YAML");
    manifest["oauth_config"]["scopes"]["bot"]
        .as_sequence()
        .expect("oauth_config.scopes.bot is a list")
        .iter()
        .map(|s| s.as_str().expect("a scope is a string").to_owned())
        .collect()
}

#[test]
fn the_manifest_asks_for_every_scope_the_bots_web_api_calls_need() {
    let scopes = bot_scopes();
    for (method, needed) in METHODS {
        for scope in *needed {
            assert!(
                scopes.iter().any(|s| s == scope),
                "{method} needs the bot scope {scope}; infra/manifest.yaml has {scopes:?}"
            );
        }
    }
}

#[test]
fn the_user_group_scope_is_read_only() {
    // Linking a role reads a group; the bot never changes one.
    let scopes = bot_scopes();
    assert!(scopes.iter().any(|s| s == "usergroups:read"));
    assert!(
        !scopes.iter().any(|s| s == "usergroups:write"),
        "{scopes:?}"
    );
}
