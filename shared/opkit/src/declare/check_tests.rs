//! What a file may declare beside the bot's own commands: `opkit commands
//! check` ([`Declared::check_with`]), `opkit commands push`
//! ([`Parsed::check_with`]) and start-up (`BotBuilder::build`) build the same
//! registry and refuse the same files with the same words; and an alias answers
//! `help`, `can` and dispatch as the command it runs.

use std::sync::Arc;

use super::*;
use crate::builtin::{self, Policy};
use crate::engine::Bot;
use crate::store::memory::MemoryStore;
use crate::testing::TestBot;

/// The bot's own commands (Opkit's built-ins), as start-up registers them.
fn built_ins() -> Vec<Arc<CommandSpec>> {
    TestBot::new().bot.registry().commands().to_vec()
}

fn services() -> Services {
    Services::http()
}

/// What each of the three says of `file`: check, push, start-up.
fn verdicts(file: &str) -> [Result<(), String>; 3] {
    let parsed = Parsed::parse("commands.toml", file).unwrap();
    let declared = parsed.clone().bind(|_| None, |_| None).unwrap();
    let check = declared
        .check_with(&built_ins(), &services())
        .map_err(|e| e.to_string());
    let push = parsed.check_with(&built_ins()).map_err(|e| e.to_string());
    let policy = Policy::default();
    let builder = Bot::builder(Arc::new(MemoryStore::new()))
        .script(builtin::script(policy.clone()))
        .script(builtin::links_script(&policy));
    // Start-up's error is the registry's, without the file name in front.
    let startup = declared
        .add_to(builder, &services())
        .unwrap()
        .build()
        .map(drop)
        .map_err(|e| format!("commands.toml: {e}"));
    [check, push, startup]
}

/// The one refusal all three give `file`.
fn refusal(file: &str) -> String {
    let [check, push, startup] = verdicts(file);
    let check = check.expect_err(file);
    assert_eq!(Err(check.clone()), push, "push agrees with check: {file}");
    assert_eq!(
        Err(check.clone()),
        startup,
        "start-up agrees with check: {file}"
    );
    check
}

#[test]
fn check_push_and_start_up_refuse_a_built_ins_form_with_the_file_and_line() {
    // the defects: check and push accepted these, start-up refused them (and
    // said "claimed by both `help` and `help`", naming neither file nor line)
    assert_eq!(
        refusal("[[command]]\nname = \"help\"\ndescribe = \"x\"\ncommand = \"whoami\"\n"),
        "commands.toml: syntax `help` is claimed by both `help` (built in) and `help` \
         (commands.toml:1)"
    );
    let grant = refusal(
        "\n[[command]]\nname = \"grants\"\naliases = [\"roles grant\"]\ncommand = \"whoami\"\n",
    );
    assert_eq!(
        grant,
        "commands.toml: syntax `roles grant` is claimed by both `roles grant` (built in) and \
         `grants` (commands.toml:2)"
    );
    for name in ["approve", "whoami"] {
        let file = format!(
            "[[command]]\nname = \"{name}\"\nusage = \"<x>\"\n[command.http]\nurl = \"https://e.example/{{{{ x }}}}\"\n"
        );
        assert!(
            refusal(&file).contains(&format!(
                "`{name}` (built in) and `{name}` (commands.toml:1)"
            )),
            "{name}"
        );
    }
}

#[test]
fn a_declared_command_cannot_begin_or_extend_a_built_ins_words() {
    // the defect: `ec2 reboot web` ran instead of `ec2 reboot` with `web`, and
    // `roles` took the word of every `roles …` command; here with built-ins
    // the test bot has
    assert_eq!(
        refusal("[[command]]\nname = \"roles grant web\"\ncommand = \"whoami\"\n"),
        "commands.toml: `roles grant web` (commands.toml:1): its form `roles grant web` would \
         hide the built-in `roles grant`: a declared command may not take a built-in's words; \
         choose another name"
    );
    assert_eq!(
        refusal("[[command]]\nname = \"roles\"\ncommand = \"whoami\"\n"),
        "commands.toml: `roles` (commands.toml:1): its form `roles` would take the first words \
         of the built-in `roles grant`: a declared command may not take a built-in's words; \
         choose another name"
    );
    // an alias form counts as much as the name
    assert!(
        refusal("[[command]]\nname = \"me\"\naliases = [\"whoami now\"]\ncommand = \"whoami\"\n")
            .contains("would hide the built-in `whoami`")
    );
    // words of their own are fine, beside a built-in's first word too
    for fine in [
        "me",
        "roles-report",
        "deploys status",
        "audit-export weekly",
    ] {
        let file = format!("[[command]]\nname = \"{fine}\"\ncommand = \"whoami\"\n");
        let [check, push, startup] = verdicts(&file);
        assert_eq!((check, push, startup), (Ok(()), Ok(()), Ok(())), "{fine}");
    }
    // and declared commands may nest among themselves, as built-ins do
    let nested = "[[command]]\nname = \"deploys\"\ncommand = \"whoami\"\n\n\
                  [[command]]\nname = \"deploys status\"\ncommand = \"help\"\n";
    assert!(verdicts(nested).iter().all(Result::is_ok));
}

#[test]
fn an_alias_must_run_a_command_that_is_not_an_alias() {
    // the defect: check and push accepted these, and only a run said "which is
    // not a command I have" (or start-up refused the name clash)
    assert_eq!(
        refusal("[[command]]\nname = \"x\"\ncommand = \"nosuch thing\"\n"),
        "commands.toml: `x` (commands.toml:1): it runs `nosuch thing`, which is not a command"
    );
    assert_eq!(
        refusal(
            "[[command]]\nname = \"a\"\ncommand = \"b\"\n\n[[command]]\nname = \"b\"\ncommand = \"help\"\n"
        ),
        "commands.toml: `a` (commands.toml:1): it runs `b`, which is the alias `b`: an alias \
         runs a command, not another alias"
    );
    assert_eq!(
        refusal(
            "[[command]]\nname = \"a1\"\ncommand = \"whoami\"\n\n\
             [[command]]\nname = \"a2\"\naliases = [\"a1\"]\ncommand = \"help\"\n"
        ),
        "commands.toml: syntax `a1` is claimed by both `a1` (commands.toml:1) and `a2` \
         (commands.toml:5)"
    );
    // an alias of a declared command is fine
    let file = "[[command]]\nname = \"ping\"\n[command.http]\nurl = \"https://e.example/p\"\n\n\
                [[command]]\nname = \"p\"\ncommand = \"ping\"\n";
    assert!(verdicts(file).iter().all(Result::is_ok));
}

/// A bot with the declared `file` (no settings or secrets).
fn bot_with(file: &str) -> TestBot {
    let declared = Parsed::parse("commands.toml", file)
        .unwrap()
        .bind(|_| None, |_| None)
        .unwrap();
    TestBot::with(|b| declared.add_to(b, &services()).unwrap())
}

const ALIASES: &str = r#"
[[command]]
name = "drop-bob"
describe = "Take ops from Bob"
command = "roles revoke <@UBOB> ops"

[[command]]
name = "me"
describe = "Who am I, for on-call"
access = [["oncall"]]
command = "whoami"

[[command]]
name = "ops-drop"
describe = "Take ops from Bob, for ops"
access = [["ops"]]
command = "roles revoke <@UBOB> ops"
"#;

#[tokio::test]
async fn an_alias_is_answered_by_what_it_runs_in_help_can_and_dispatch() {
    // the defect: `can` said "open to everyone" and `help` listed the alias to
    // everyone, and then the run was refused
    let t = bot_with(ALIASES);
    assert_eq!(
        t.text("UCAROL", "can <@UCAROL> drop-bob").await,
        "No: <@UCAROL> may not run `drop-bob`; it needs admin."
    );
    assert!(!t.text("UCAROL", "help").await.contains("drop-bob"));
    assert_eq!(
        t.text("UCAROL", "drop-bob").await,
        "Sorry, you need admin to run `drop-bob`."
    );
    // an admin may, and `help` lists it to them
    assert!(t.text("UADMIN", "help").await.contains("drop-bob"));
    assert!(
        t.text("UADMIN", "can <@UADMIN> drop-bob")
            .await
            .starts_with("Yes: <@UADMIN> may run `drop-bob`"),
    );
}

#[tokio::test]
async fn an_alias_with_access_of_its_own_needs_both() {
    let t = bot_with(ALIASES);
    // its own access, in front of an open command
    assert!(
        t.text("UCAROL", "can <@UCAROL> me")
            .await
            .contains("it needs oncall")
    );
    assert!(
        t.text("UCAROL", "me")
            .await
            .starts_with("Sorry, you need oncall")
    );
    t.text("UADMIN", "roles grant <@UCAROL> oncall").await;
    assert!(t.text("UCAROL", "me").await.contains("<@UCAROL>"));
    assert!(t.text("UCAROL", "help").await.contains("`me`"));
    // its own and the target's: ops alone is not enough, nor admin alone
    assert_eq!(
        t.text("UCAROL", "can <@UCAROL> ops-drop").await,
        "No: <@UCAROL> may not run `ops-drop`; it needs ops and admin."
    );
    assert!(!t.text("UADMIN", "help").await.contains("ops-drop"));
    t.text("UADMIN", "roles grant <@UCAROL> ops").await;
    assert!(!t.text("UCAROL", "help").await.contains("ops-drop"));
    t.text("UADMIN", "roles grant <@UCAROL> admin").await;
    assert!(t.text("UCAROL", "help").await.contains("ops-drop"));
    assert!(
        t.text("UCAROL", "can <@UCAROL> ops-drop")
            .await
            .starts_with("Yes")
    );
}

#[test]
fn an_empty_approval_or_access_alternative_is_refused_with_its_line() {
    // tester 6, G14: `approval = [[]]` loaded as approval by anyone but the
    // asker, and its prompt said "someone with  (not the asker)"
    let file = |key: &str| {
        format!(
            "[[command]]\nname = \"wipe\"\n{key}\n[command.http]\nmethod = \"POST\"\n\
             url = \"http://127.0.0.1:1/wipe\"\n"
        )
    };
    let error = |key: &str| {
        Parsed::parse("commands.toml", &file(key))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error("approval = [[]]"),
        "commands.toml:3: `approval`: alternative 1 names no role, so it would let everyone \
         in: write no requirement for everyone, or `[]` for nobody"
    );
    assert_eq!(
        error("access = [[\"ops\"], []]"),
        "commands.toml:3: `access`: alternative 2 names no role, so it would let everyone \
         in: write no requirement for everyone, or `[]` for nobody"
    );
    assert!(
        error("approval = []").starts_with(
            "commands.toml:3: `approval = []` names nobody who may approve: no request could \
             ever run"
        ),
        "{}",
        error("approval = []")
    );
    // nobody may run it: still `access = []`
    assert!(Parsed::parse("commands.toml", &file("access = []")).is_ok());
}
