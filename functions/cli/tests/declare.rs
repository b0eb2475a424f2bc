//! Declarative commands through the `opkit` binary: `OPKIT_COMMANDS_FILE` with
//! `opkit say` against a fake service on loopback, `opkit commands check` on good
//! and bad files, and `opkit commands push` to the file store, which the next
//! `opkit say` loads without the variable.

use std::path::{Path, PathBuf};
use std::process::Output;

use opkit_tests::FakeService;
use tokio::process::Command;

/// The issue's example, as written.
const ISSUE_EXAMPLE: &str =
    include_str!("../../../shared/opkit/fixtures/declare/issue-example.toml");

const TOKEN: &str = "cli-deploys-token-value";

fn dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("opkit-declare-{name}-{nanos:x}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn opkit(data: &Path, base: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opkit"));
    command
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("OPKIT_ADMINS")
        .env_remove("OPKIT_COMMANDS_FILE")
        .env("DEPLOYS_URL", base)
        .env("DEPLOYS_TOKEN", TOKEN);
    command
}

fn text(output: &Output) -> (Option<i32>, String, String) {
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn opkit_say_runs_the_issue_example_against_a_local_service() {
    let service = FakeService::start().await;
    let data = dir("say");
    let file = data.join("commands.toml");
    std::fs::write(&file, ISSUE_EXAMPLE).unwrap();
    let say = |roles: &'static str, words: &'static str| {
        let mut c = opkit(
            &data,
            &service.base,
            &["say", "--user", "U1", "--roles", roles, words],
        );
        c.env("OPKIT_COMMANDS_FILE", &file);
        c
    };
    let (code, out, err) = text(&say("ops", "deploys status web").output().await.unwrap());
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "*web* runs `1.4.2`, deployed 2026-11-29\n"),
        "{err}"
    );
    assert_eq!(service.seen()[0].uri, "/services/web/version");
    assert_eq!(
        service.seen()[0].headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    // an injection attempt stays one path segment
    let (_, out, _) = text(
        &say("ops", "deploys status \"../admin?x=1&y\"")
            .output()
            .await
            .unwrap(),
    );
    assert!(out.starts_with("*../admin?x=1&y* runs"), "{out}");
    assert_eq!(
        service.seen()[1].uri,
        "/services/..%2Fadmin%3Fx%3D1%26y/version"
    );
    // without the role: refused, nothing sent
    let (_, out, _) = text(&say("qa", "deploys status web").output().await.unwrap());
    assert_eq!(
        out,
        "Sorry, you need ops, or admin to run `deploys status`.\n"
    );
    assert_eq!(service.seen().len(), 2);
}

#[tokio::test]
async fn a_bad_file_stops_start_up_with_its_line_and_check_says_the_same() {
    let data = dir("bad");
    let file = data.join("commands.toml");
    std::fs::write(
        &file,
        ISSUE_EXAMPLE.replace("{{ service }}/version", "{{ servce }}/version"),
    )
    .unwrap();
    let expected = format!(
        "opkit: {}:9: `servce` is not an argument of this command (it has: service); a template \
         reads the arguments, env.NAME or secret.NAME\n",
        file.display()
    );
    let mut say = opkit(&data, "http://127.0.0.1:9", &["say", "help"]);
    say.env("OPKIT_COMMANDS_FILE", &file);
    let (code, _, err) = text(&say.output().await.unwrap());
    assert_eq!((code, err.as_str()), (Some(1), expected.as_str()));
    let check = opkit(
        &data,
        "http://127.0.0.1:9",
        &["commands", "check", file.to_str().unwrap()],
    )
    .output()
    .await
    .unwrap();
    let (code, _, err) = text(&check);
    assert_eq!((code, err.as_str()), (Some(1), expected.as_str()));
    // an unset secret, too
    std::fs::write(&file, ISSUE_EXAMPLE).unwrap();
    let mut check = opkit(
        &data,
        "http://127.0.0.1:9",
        &["commands", "check", file.to_str().unwrap()],
    );
    check.env_remove("DEPLOYS_TOKEN");
    let (code, _, err) = text(&check.output().await.unwrap());
    assert_eq!(code, Some(1));
    assert!(
        err.contains(":10: the secret `DEPLOYS_TOKEN` (secret.DEPLOYS_TOKEN) is not set"),
        "{err}"
    );
    // and a good one
    let check = opkit(
        &data,
        "http://127.0.0.1:9",
        &["commands", "check", file.to_str().unwrap()],
    )
    .output()
    .await
    .unwrap();
    let (code, out, err) = text(&check);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!("{}: 1 commands: deploys status\n", file.display())
    );
}

#[tokio::test]
async fn a_pushed_file_is_what_the_next_process_runs() {
    let service = FakeService::start().await;
    let data = dir("push");
    let file = data.join("commands.toml");
    // locally there is no Secrets Manager: this one reads no secret
    let no_secret = ISSUE_EXAMPLE.replace(
        "headers = { Authorization = \"Bearer {{ secret.DEPLOYS_TOKEN }}\" }\n",
        "",
    );
    assert_ne!(no_secret, ISSUE_EXAMPLE);
    std::fs::write(&file, &no_secret).unwrap();
    let push = opkit(
        &data,
        &service.base,
        &[
            "commands",
            "push",
            file.to_str().unwrap(),
            "--user",
            "UADMIN1",
        ],
    )
    .output()
    .await
    .unwrap();
    let (code, out, err) = text(&push);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("stored as version 1: 1 commands"), "{out}");
    assert!(
        out.contains("settings stored with it: DEPLOYS_URL"),
        "{out}"
    );
    // no OPKIT_COMMANDS_FILE, and no DEPLOYS_URL: the store's version, with its setting
    let say = opkit(
        &data,
        "http://127.0.0.1:9",
        &[
            "say",
            "--user",
            "U1",
            "--roles",
            "admin",
            "deploys status api",
        ],
    )
    .output()
    .await
    .unwrap();
    let (_, out, err) = text(&say);
    assert_eq!(out, "*api* runs `1.4.2`, deployed 2026-11-29\n", "{err}");
    // the push is audited
    let audit = opkit(
        &data,
        &service.base,
        &["say", "--user", "U1", "--roles", "admin", "audit"],
    )
    .output()
    .await
    .unwrap();
    let (_, out, _) = text(&audit);
    assert!(out.contains("commands push"), "{out}");
}

#[tokio::test]
async fn check_and_push_refuse_what_start_up_refuses() {
    // the defect: check and push accepted a built-in's form; push stored it as
    // the current version, which every process then refused (a log line only)
    let data = dir("clash");
    let file = data.join("bad.toml");
    let path = file.to_str().unwrap();
    let run = |args: &[&str]| opkit(&data, "http://127.0.0.1:9", args).output();
    for (toml, why) in [
        (
            "[[command]]\nname = \"help\"\ndescribe = \"x\"\ncommand = \"whoami\"\n",
            "syntax `help` is claimed by both `help` (built in) and `help` (BAD:1)".to_string(),
        ),
        (
            // a catbot command's literal words (`ec2 reboot` with `web`)
            "[[command]]\nname = \"ec2 reboot web\"\ncommand = \"whoami\"\n",
            "`ec2 reboot web` (BAD:1): its form `ec2 reboot web` would hide the built-in \
             `ec2 reboot`"
                .to_string(),
        ),
        (
            "[[command]]\nname = \"x\"\ncommand = \"nosuch thing\"\n",
            "`x` (BAD:1): it runs `nosuch thing`, which is not a command".to_string(),
        ),
    ] {
        std::fs::write(&file, toml).unwrap();
        let why = why.replace("BAD", path);
        let (code, _, check) = text(&run(&["commands", "check", path]).await.unwrap());
        assert_eq!(code, Some(1), "{toml}");
        assert!(
            check.starts_with(&format!("opkit: {path}: {why}")),
            "{check}"
        );
        let mut say = opkit(
            &data,
            "http://127.0.0.1:9",
            &["say", "--user", "U1", "help"],
        );
        say.env("OPKIT_COMMANDS_FILE", &file);
        let (code, _, start_up) = text(&say.output().await.unwrap());
        assert_eq!(code, Some(1), "{toml}");
        assert!(start_up.starts_with(&format!("opkit: {why}")), "{start_up}");
        let (code, out, push) = text(
            &run(&["commands", "push", path, "--user", "UADMIN1"])
                .await
                .unwrap(),
        );
        assert_eq!((code, out.as_str()), (Some(1), ""), "{toml}");
        assert!(push.starts_with(&format!("opkit: {path}: {why}")), "{push}");
    }
    // nothing was stored: the next process runs without a word in its log
    let (code, out, err) = text(&run(&["say", "--user", "U1", "whoami"]).await.unwrap());
    assert_eq!((code, err.as_str()), (Some(0), ""), "{out}");
}

#[tokio::test]
async fn can_and_help_answer_for_an_alias_as_for_what_it_runs() {
    // the defect: with examples/commands.toml, `can` said `reboot-web` was open
    // to everyone and `help` listed it, then the run was refused
    let data = dir("alias");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/commands.toml");
    let say = |words: &'static str| {
        let mut c = opkit(
            &data,
            "http://127.0.0.1:9",
            &["say", "--user", "U0BOB0001", words],
        );
        c.env("OPKIT_COMMANDS_FILE", example)
            .env("RESTART_FUNCTION", "restart-service");
        c
    };
    let (_, can, err) = text(&say("can <@U0BOB0001> reboot-web").output().await.unwrap());
    assert_eq!(
        can, "No: @U0BOB0001 may not run `reboot-web`; it needs ops, or admin.\n",
        "{err}"
    );
    let (_, help, _) = text(&say("help").output().await.unwrap());
    assert!(!help.contains("reboot-web"), "{help}");
    let (_, run, _) = text(&say("reboot-web").output().await.unwrap());
    assert_eq!(run, "Sorry, you need ops, or admin to run `reboot-web`.\n");
}
