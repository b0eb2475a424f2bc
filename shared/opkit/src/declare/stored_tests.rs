//! The deployed path of declarative commands: push, then a bot that loads the
//! stored version and picks up a newer one within [`REFRESH`], on the manual
//! clock (no sleeps).

use std::sync::Arc;

use super::stored::{self, EnvSecrets, REFRESH, StoredCommands};
use super::*;
use crate::ids::UserId;
use crate::store::Store;
use crate::testing::TestBot;

const V1: &str = r#"
[[command]]
name = "me"
command = "whoami"
"#;

const V2: &str = r#"
[[command]]
name = "me"
command = "whoami"

[[command]]
name = "my roles"
describe = "My grants"
command = "roles list"
"#;

fn stored_bot() -> TestBot {
    let source = StoredCommands::new(
        |_: &str| None,
        Arc::new(EnvSecrets(|_: &str| None)),
        Services::http(),
    );
    TestBot::with(|b| b.commands_source(Arc::new(source), REFRESH))
}

/// The commands a bot has without declared ones.
fn built_ins() -> Vec<Arc<CommandSpec>> {
    TestBot::new().bot.registry().commands().to_vec()
}

async fn push(t: &TestBot, text: &str) -> Result<u64, stored::PushError> {
    push_against(t, &built_ins(), text).await
}

/// Pushes `text` checked against `built` only.
async fn push_against(
    t: &TestBot,
    built: &[Arc<CommandSpec>],
    text: &str,
) -> Result<u64, stored::PushError> {
    let store: &dyn Store = t.bot.store().as_ref();
    let pusher = |name: &str| (name == "PUSHED_URL").then(|| "https://pushed.example".to_string());
    stored::push(
        store,
        built,
        "commands.toml",
        text,
        pusher,
        &UserId::parse("UADMIN").unwrap(),
        t.now(),
    )
    .await
}

#[tokio::test]
async fn a_pushed_version_is_loaded_and_a_newer_one_within_a_minute() {
    // GIVEN version 1 pushed before the bot's first command
    let t = stored_bot();
    assert_eq!(push(&t, V1).await.unwrap(), 1);
    // WHEN someone uses it
    assert!(t.text("UBOB", "me").await.contains("<@UBOB>"));
    // AND version 2 is pushed
    assert_eq!(push(&t, V2).await.unwrap(), 2);
    // THEN within the minute the bot still has version 1 (one read a minute)
    t.advance(REFRESH - chrono::Duration::seconds(1));
    assert!(t.text("UBOB", "my roles").await.starts_with("I don't know"));
    // AND a minute after its last look it has version 2
    t.advance(chrono::Duration::seconds(1));
    assert!(!t.text("UBOB", "my roles").await.starts_with("I don't know"));
    assert!(t.text("UBOB", "help").await.contains("my roles"));
    // AND the push is in the audit trail
    let pushes: Vec<_> = t
        .audit(50)
        .await
        .into_iter()
        .filter(|r| r.command.as_deref() == Some("commands push"))
        .collect();
    assert_eq!(pushes.len(), 2);
    assert!(format!("{:?}", pushes[0].outcome).contains("version 2: me, my roles"));
}

#[tokio::test]
async fn a_file_that_cannot_be_used_is_not_stored() {
    let t = stored_bot();
    push(&t, V1).await.unwrap();
    let err = push(&t, "[[command]]\nname = \"x\"\n").await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("commands.toml:1: `x` needs exactly one action"),
        "{err}"
    );
    let (version, file) = stored::current(t.bot.store().as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((version, file.text.as_str()), (1, V1));
}

#[tokio::test]
async fn a_version_that_clashes_with_a_built_in_is_refused_and_the_last_one_kept() {
    let t = stored_bot();
    push(&t, V1).await.unwrap();
    assert!(t.text("UBOB", "me").await.contains("<@UBOB>"));
    // `whoami` is a built-in's form: push refuses it, as the bot would
    let clash = "[[command]]\nname = \"whoami\"\n[command.http]\nurl = \"https://example.com/x\"\n";
    let err = push(&t, clash).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "commands.toml: syntax `whoami` is claimed by both `whoami` (built in) and `whoami` \
         (commands.toml:1)"
    );
    assert_eq!(
        stored::current(t.bot.store().as_ref())
            .await
            .unwrap()
            .unwrap()
            .0,
        1
    );
    // AND one stored by a pusher that did not know the bot's commands is
    // logged as refused by the bot, which keeps the version it has
    push_against(&t, &[], clash).await.unwrap();
    t.advance(REFRESH);
    assert!(
        t.text("UBOB", "me").await.contains("<@UBOB>"),
        "version 1 still runs"
    );
    assert!(t.text("UBOB", "whoami").await.contains("<@UBOB>"));
}

#[tokio::test]
async fn a_version_whose_setting_is_missing_here_keeps_the_last_one() {
    let t = stored_bot();
    push(&t, V1).await.unwrap();
    t.text("UBOB", "me").await;
    let needs_setting = r#"
[[command]]
name = "deploys"
[command.http]
url = "{{ env.NOT_SET_HERE }}/x"
"#;
    // push needs the setting in the pusher's environment …
    let err = push(&t, needs_setting).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("`NOT_SET_HERE` (env.NOT_SET_HERE) is not set"),
        "{err}"
    );
    // … and a secret as a reference, never its value
    let needs_secret = needs_setting.replace("NOT_SET_HERE", "PUSHED_URL")
        + "headers = { Authorization = \"{{ secret.TOKEN }}\" }\n";
    let err = push(&t, &needs_secret).await.unwrap_err();
    assert!(err.to_string().contains("set TOKEN_ARN"), "{err}");
    // a version stored by hand whose setting this worker lacks keeps the last one
    let store: &dyn Store = t.bot.store().as_ref();
    let file = stored::StoredFile {
        origin: "by hand".into(),
        text: needs_setting.into(),
        pushed_by: UserId::parse("UADMIN").unwrap(),
        pushed_at: t.now(),
        settings: Default::default(),
        secret_ids: Default::default(),
    };
    let value =
        crate::store::EncodedState::new(stored::STATE_KEY, serde_json::to_value(&file).unwrap())
            .unwrap();
    store.save(stored::STATE_KEY, &value, 1).await.unwrap();
    t.advance(REFRESH);
    assert!(t.text("UBOB", "me").await.contains("<@UBOB>"));
    assert!(t.text("UBOB", "deploys").await.starts_with("I don't know"));
}

#[tokio::test]
async fn a_version_that_cannot_be_loaded_is_named_to_users_not_hidden() {
    // GIVEN a fresh bot and a version whose secret this process cannot read
    let t = stored_bot();
    let store: &dyn Store = t.bot.store().as_ref();
    let file = stored::StoredFile {
        origin: "commands.toml".into(),
        text: "[[command]]\nname = \"deploys\"\n[command.http]\nurl = \"https://x.example/\"\n\
               headers = { Authorization = \"{{ secret.TOKEN }}\" }\n"
            .into(),
        pushed_by: UserId::parse("UADMIN").unwrap(),
        pushed_at: t.now(),
        settings: Default::default(),
        secret_ids: [(
            "TOKEN".to_string(),
            "arn:aws:secretsmanager:us-east-1:1:secret:t".to_string(),
        )]
        .into(),
    };
    let value =
        crate::store::EncodedState::new(stored::STATE_KEY, serde_json::to_value(&file).unwrap())
            .unwrap();
    store.save(stored::STATE_KEY, &value, 0).await.unwrap();
    // WHEN a user runs one of its commands
    let reply = t.text("UBOB", "deploys").await;
    // THEN they are told the declared commands could not be loaded, and whom to ask
    assert_eq!(
        reply,
        "I don't know `deploys`. Type `help` to see what you can run. The commands declared \
         for this bot could not be loaded; ask an admin."
    );
    // AND once a version loads, an unknown command is only unknown
    push(&t, V1).await.unwrap();
    t.advance(REFRESH);
    assert!(t.text("UBOB", "me").await.contains("<@UBOB>"));
    assert_eq!(
        t.text("UBOB", "deploys").await,
        "I don't know `deploys`. Type `help` to see what you can run."
    );
}

#[tokio::test]
async fn pushed_settings_travel_with_the_file() {
    let t = stored_bot();
    let file = r#"
[[command]]
name = "where"
[command.http]
url = "{{ env.PUSHED_URL }}/x"
"#;
    push(&t, file).await.unwrap();
    let (_, stored) = stored::current(t.bot.store().as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.settings["PUSHED_URL"], "https://pushed.example");
    // the worker (whose own environment has nothing) has the command
    assert!(t.text("UADMIN", "help where").await.starts_with("`where`"));
}

/// `deploys rollback <service>`, with `gate` (`confirm = true`, `approval = …`)
/// and `call` (its `method` and `url` lines).
fn rollback(gate: &str, call: &str) -> String {
    format!(
        r#"
[[command]]
name = "deploys rollback"
usage = "<service>"
{gate}
[command.http]
{call}
reply = "Rolled back *{{{{ service }}}}*."
"#
    )
}

const ROLLBACK: &str =
    "method = \"POST\"\nurl = \"{{ env.PUSHED_URL }}/services/{{ service }}/rollback\"";

/// The bot has the newest pushed version at its next look.
async fn pushed_and_picked_up(t: &TestBot, text: &str) {
    push(t, text).await.unwrap();
    t.advance(REFRESH);
}

#[tokio::test]
async fn a_confirmation_asked_before_the_command_needed_an_approval_runs_nothing() {
    // GIVEN `deploys rollback` is confirmed by its asker, and UOPS asks
    let t = stored_bot();
    pushed_and_picked_up(&t, &rollback("confirm = true", ROLLBACK)).await;
    let prompt = t.say("UOPS", "deploys rollback web").await;
    assert!(
        prompt
            .text
            .as_str()
            .starts_with("Run `deploys rollback web`?"),
        "{}",
        prompt.text
    );
    // WHEN an admin pushes a version that needs a lead's approval, and UOPS confirms
    pushed_and_picked_up(&t, &rollback("approval = [[\"lead\"]]", ROLLBACK)).await;
    let refused = t
        .click("UOPS", &prompt, crate::engine::gate::Decision::Confirm)
        .await;
    // THEN the two-person rule holds: nothing is called (it would fail: the host
    // does not resolve), and the asker is told to ask again
    assert_eq!(
        refused.text.as_str(),
        "`deploys rollback` now needs approval by someone with lead since this was asked \
         (it needed a confirmation); nothing was run. Ask again if you still want it."
    );
    let again = t.say("UOPS", "deploys rollback web").await;
    assert!(
        again
            .text
            .as_str()
            .contains("needs approval by someone with lead"),
        "{}",
        again.text
    );
}

#[tokio::test]
async fn a_confirmation_runs_only_the_call_its_prompt_showed() {
    // GIVEN a confirmed POST …/rollback, asked
    let t = stored_bot();
    pushed_and_picked_up(&t, &rollback("confirm = true", ROLLBACK)).await;
    let prompt = t.say("UOPS", "deploys rollback web").await;
    assert!(
        prompt
            .text
            .as_str()
            .contains("`call POST pushed.example/services/web/rollback`"),
        "{}",
        prompt.text
    );
    // WHEN a new version makes it DELETE …/destroy, and the asker confirms
    let destroy =
        "method = \"DELETE\"\nurl = \"{{ env.PUSHED_URL }}/services/{{ service }}/destroy\"";
    pushed_and_picked_up(&t, &rollback("confirm = true", destroy)).await;
    let refused = t
        .click("UOPS", &prompt, crate::engine::gate::Decision::Confirm)
        .await;
    // THEN it is refused naming both calls, and nothing is sent
    assert!(
        refused.text.as_str().contains(
            "The call changed since this request was asked: it was call POST \
             https://pushed.example:443/services/web/rollback, it is now call DELETE \
             https://pushed.example:443/services/web/destroy. Nothing was run"
        ),
        "{}",
        refused.text
    );
}
