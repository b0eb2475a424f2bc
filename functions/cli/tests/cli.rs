//! `opkit say` and `opkit shell` as a user runs them: exit codes, output, and many
//! processes sharing one data directory.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn data_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("opkit-cli-{name}-{nanos:x}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn opkit(dir: &PathBuf, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opkit"));
    command
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("OPKIT_ADMINS")
        .env_remove("OPKIT_DATA_DIR");
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn say_prints_the_reply_and_exits_zero_even_when_denied() {
    let dir = data_dir("say");
    let ok = opkit(&dir, &["say", "--user", "U1", "queue", "join", "perf"])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(stdout(&ok), "@U1 holds *perf* now until you leave.\n");
    let denied = opkit(&dir, &["say", "--user", "U1", "audit"])
        .output()
        .unwrap();
    assert_eq!(denied.status.code(), Some(0));
    assert_eq!(stdout(&denied), "Sorry, you need admin to run `audit`.\n");
    let admin = opkit(
        &dir,
        &[
            "say", "--user", "U1", "--roles", "admin", "audit", "last", "1",
        ],
    )
    .output()
    .unwrap();
    assert!(
        stdout(&admin).contains("`audit last 1` requested"),
        "{}",
        stdout(&admin)
    );
}

#[test]
fn a_reader_that_went_away_ends_the_command_quietly_with_its_work_done() {
    // GIVEN standard output a pipe whose reader is already gone (as
    // `opkit say … | head -1` once head has its line)
    let dir = data_dir("pipe");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    // WHEN a command that changes state prints its reply into it
    let out = opkit(&dir, &["say", "--user", "U1", "queue", "join", "perf"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    // THEN it exits 0 without a panic (it was 101 with a backtrace)
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // AND the work was done
    let status = opkit(&dir, &["say", "--user", "U2", "queue", "status"])
        .output()
        .unwrap();
    assert!(stdout(&status).contains("U1"), "{}", stdout(&status));
}

#[test]
fn bad_flags_exit_two_and_bad_config_exits_one_naming_the_setting() {
    let dir = data_dir("flags");
    let bad_flag = opkit(&dir, &["say", "--frobnicate", "help"])
        .output()
        .unwrap();
    assert_eq!(bad_flag.status.code(), Some(2));
    let bad_user = opkit(&dir, &["say", "--user", "bob", "help"])
        .output()
        .unwrap();
    assert_eq!(bad_user.status.code(), Some(2));
    let said = String::from_utf8(bad_user.stderr).unwrap();
    assert!(
        said.contains("`bob` is not a Slack user id: give one such as U012ABCDEF, or its mention <@U012ABCDEF>"),
        "{said}"
    );
    // a mention, as Slack writes one, names the user
    for mention in ["<@U1>", "<@U1|al>"] {
        let as_mention = opkit(&dir, &["say", "--user", mention, "whoami"])
            .output()
            .unwrap();
        let said = String::from_utf8(as_mention.stdout).unwrap();
        assert!(said.starts_with("You are @U1 (`U1`)"), "{mention}: {said}");
    }
    let bad_config = opkit(&dir, &["say", "help"])
        .env("OPKIT_ADMINS", "U1,not-a-user")
        .output()
        .unwrap();
    assert_eq!(bad_config.status.code(), Some(1));
    let stderr = String::from_utf8(bad_config.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("opkit: OPKIT_ADMINS is invalid"),
        "{stderr}"
    );
}

#[test]
fn a_corrupt_state_file_is_reported_and_left_alone() {
    let dir = data_dir("corrupt");
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(dir.join("state").join("queue.json"), "{oops").unwrap();
    let out = opkit(&dir, &["say", "--user", "U1", "queue", "join", "perf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("queue.json is corrupt and was left untouched"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("state").join("queue.json")).unwrap(),
        "{oops"
    );
}

#[test]
fn the_shell_reads_commands_until_exit() {
    let dir = data_dir("shell");
    let mut child = opkit(&dir, &["shell", "--user", "U7"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"queue join perf\n\nwhoami\nexit\nqueue leave perf\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "@U7 holds *perf* now until you leave.\n\nYou are @U7 (`U7`), holding no roles now.\n\n"
    );
}

/// The shell, fed `input` on a pipe; its whole standard output.
fn shell(dir: &PathBuf, args: &[&str], input: &[u8]) -> String {
    let mut child = opkit(dir, &[&["shell"], args].concat())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    stdout(&out)
}

/// `opkit say` as `user` with `extra` flags; its standard output.
fn say(dir: &PathBuf, user: &str, extra: &[&str], text: &str) -> String {
    let out = opkit(dir, &[&["say", "--user", user], extra, &[text]].concat())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    stdout(&out)
}

/// The short id a prompt offers for typing (`confirm 1a2b3c4d`).
fn typed_id(prompt: &str) -> String {
    let line = prompt
        .lines()
        .find(|l| l.starts_with("Without buttons: "))
        .unwrap_or_else(|| panic!("no typed id in {prompt}"));
    line.split('`')
        .nth(1)
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn the_shell_asks_y_n_where_slack_shows_confirm_and_only_yes_runs() {
    let dir = data_dir("confirm");
    let admin = ["--user", "U1", "--roles", "admin"];
    let out = shell(
        &dir,
        &admin,
        b"roles grant <@U2> ops\n\
          roles revoke <@U2> ops\nn\n\
          roles revoke <@U2> ops\nYes\n\
          roles list\n\
          roles revoke <@U2> ops\n",
    );
    assert!(
        out.ends_with(".\n\n"),
        "a blank line after the last reply: {out:?}"
    );
    let replies: Vec<&str> = out.trim_end().split("\n\n").collect();
    assert_eq!(replies.len(), 5, "a blank line after each reply: {out:?}");
    assert_eq!(replies[0], "@U1 granted *ops* to @U2 until revoked.");
    // a no (or anything but y/yes) withdraws it
    assert!(
        replies[1].starts_with("Run `roles revoke <@U2> ops`? Confirm by "),
        "{}",
        replies[1]
    );
    assert!(
        replies[1].contains("\nIt would take *ops* from @U2, ending the grant until revoked.\n"),
        "{}",
        replies[1]
    );
    assert!(
        replies[1].ends_with(
            "\nRun it? [y/N] n\n@U1 withdrew `roles revoke <@U2> ops`; nothing was run."
        ),
        "{}",
        replies[1]
    );
    // a yes runs it, as a click on Confirm would
    assert!(
        replies[2].contains("\nRun it? [y/N] Yes\n@U1 confirmed `roles revoke <@U2> ops` at "),
        "{}",
        replies[2]
    );
    assert!(
        replies[2].ends_with("\n@U1 revoked *ops* from @U2, ending the grant until revoked."),
        "{}",
        replies[2]
    );
    assert!(!replies[3].contains("@U2"), "{}", replies[3]);
    // nothing left to revoke: told at once, no question
    assert_eq!(replies[4], "@U2 has no grant of ops.");
}

#[test]
fn the_end_of_input_at_the_question_confirms_nothing() {
    let dir = data_dir("eof");
    let out = shell(
        &dir,
        &["--user", "U1", "--roles", "admin"],
        b"roles grant <@U2> ops\nroles revoke <@U2> ops\n",
    );
    assert!(
        out.ends_with("Run it? [y/N] \n(end of input: not confirmed)\n@U1 withdrew `roles revoke <@U2> ops`; nothing was run.\n\n"),
        "{out}"
    );
    assert!(
        say(&dir, "U9", &[], "roles who ops").contains("@U2"),
        "still held"
    );
}

#[test]
fn a_line_that_is_not_utf8_does_not_end_the_shell() {
    let dir = data_dir("utf8");
    let out = shell(
        &dir,
        &["--user", "U7"],
        b"queue join perf\n\xff\xfe\xfd\nwhoami\n",
    );
    assert_eq!(
        out,
        "@U7 holds *perf* now until you leave.\n\n\
         That line is not valid UTF-8, so it was skipped; type it again.\n\n\
         You are @U7 (`U7`), holding no roles now.\n\n"
    );
}

#[test]
fn say_yes_confirms_and_say_alone_holds_for_a_typed_confirm() {
    let dir = data_dir("say-yes");
    let admin = ["--roles", "admin"];
    say(&dir, "U1", &admin, "roles grant <@U2> ops");
    say(&dir, "U1", &admin, "roles grant <@U3> ops");
    // without --yes: held, and told how to finish it
    let held = say(&dir, "U1", &admin, "roles revoke <@U2> ops");
    assert!(held.starts_with("Run `roles revoke <@U2> ops`?"), "{held}");
    assert!(
        held.ends_with("\n(Not run. `opkit say --yes …` confirms at once.)\n"),
        "{held}"
    );
    assert!(
        say(&dir, "U9", &[], "roles who ops").contains("@U2"),
        "not yet"
    );
    // the typed confirmation, by the asker, in another process
    let done = say(&dir, "U1", &admin, &format!("confirm {}", typed_id(&held)));
    assert!(done.contains("@U1 revoked *ops* from @U2"), "{done}");
    // with --yes: confirmed at once; the outcome says who confirmed
    let done = say(
        &dir,
        "U1",
        &["--roles", "admin", "--yes"],
        "roles revoke <@U3> ops",
    );
    assert!(
        done.starts_with("@U1 confirmed `roles revoke <@U3> ops` at "),
        "{done}"
    );
    assert!(done.contains("@U1 revoked *ops* from @U3"), "{done}");
    assert!(!say(&dir, "U9", &[], "roles who ops").contains("@U3"));
}

#[test]
fn typed_approvals_refuse_the_asker_and_the_unentitled_and_run_for_an_approver() {
    let dir = data_dir("approve");
    let run = |user: &str, roles: &str, text: &str| {
        let roles: &[&str] = if roles.is_empty() {
            &[]
        } else {
            &["--roles", roles]
        };
        let out = opkit(&dir, &[&["say", "--user", user], roles, &[text]].concat())
            .env("OPKIT_GRANT_APPROVERS", "approver")
            // the asker must still be a granter when it is approved, in another process
            .env("OPKIT_ADMINS", "U1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        stdout(&out)
    };
    let asked = run("U1", "", "roles grant <@U3> ops");
    assert!(
        asked.starts_with("@U1 asks to run `roles grant <@U3> ops`."),
        "{asked}"
    );
    let id = typed_id(&asked);
    // --yes does not approve: an approval is someone else's
    assert_eq!(
        run("U1", "", &format!("approve {id}")),
        "You cannot approve your own request.\n"
    );
    // someone who may not decide it learns nothing of it
    assert!(
        run("U4", "ops", &format!("approve {id}")).starts_with("No pending request has the id"),
    );
    // nor may the grantee approve it, approver or not
    assert_eq!(
        run("U3", "approver", &format!("approve {id}")),
        "You cannot approve a request that gives you something; someone else must.\n"
    );
    let listed = run("U2", "approver", "approvals");
    assert!(
        listed.contains(&format!("`{id}` @U1 asked to run `roles grant <@U3> ops`")),
        "{listed}"
    );
    let approved = run("U2", "approver", &format!("approve {id}"));
    assert!(
        approved.starts_with("@U2 approved `roles grant <@U3> ops` at "),
        "{approved}"
    );
    assert!(approved.contains("@U1 granted *ops* to @U3"), "{approved}");
    assert!(
        run("U2", "approver", &format!("approve {id}"))
            .starts_with("No pending request has the id"),
    );
}

#[test]
fn many_processes_joining_at_once_lose_no_one() {
    // GIVEN one data directory and 24 users, each in their own `opkit` process
    let dir = data_dir("race");
    let users: Vec<String> = (0..24).map(|i| format!("U{i:03}")).collect();
    // WHEN they all join the same queue at once
    let children: Vec<_> = users
        .iter()
        .map(|u| {
            opkit(&dir, &["say", "--user", u, "queue", "join", "perf"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    // THEN every one of them is in line, once
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("state").join("queue.json")).unwrap(),
    )
    .unwrap();
    let mut in_line: Vec<String> = state["state"]["envs"]["perf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user"].as_str().unwrap().to_string())
        .collect();
    in_line.sort();
    assert_eq!(in_line, users);
    assert_eq!(state["version"], 24);
}

#[tokio::test]
async fn the_shell_answers_aws_commands_against_the_emulator() {
    // GIVEN an alarm in the emulator (the test script exports AWS_ENDPOINT_URL and
    // the CloudWatch bridge's endpoint)
    let region = "us-east-2";
    let prefix = opkit_tests::aws::unique_name("cli");
    let cw = opkit_tests::aws_packs::cloudwatch_client(region).await;
    opkit_tests::aws_packs::seed_alarm(&cw, &format!("{prefix}-disk"), "ALARM", "Disk 97% full")
        .await;
    // WHEN `opkit say` asks for it, as a user would from the shell
    let dir = data_dir("aws");
    let out = opkit(
        &dir,
        &[
            "--store", "memory", "say", "--user", "U1", "alarms", "prefix", &prefix,
        ],
    )
    .env("AWS_REGION", region)
    .output()
    .unwrap();
    // THEN the alarm is listed, with its reason and region
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains(&format!("{prefix}-disk")), "{text}");
    assert!(
        text.contains("Disk 97% full") && text.contains(region),
        "{text}"
    );
}

/// The shell on a terminal: `script` (util-linux) gives it a pseudo-terminal, and
/// each line is typed only once the prompt it answers is on the screen, as a
/// person would.
#[test]
fn on_a_terminal_the_shell_edits_lines_keeps_history_and_survives_bad_bytes() {
    use std::io::Read;
    use std::sync::mpsc;
    let dir = data_dir("pty");
    let command = format!(
        "{} --data-dir {} shell --user U1 --roles admin",
        env!("CARGO_BIN_EXE_opkit"),
        dir.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("OPKIT_ADMINS")
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs the shell on a pseudo-terminal");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = String::new();
    // Reads until `wanted` has appeared `times` times in all output so far.
    let mut wait_for = |wanted: &str, times: usize| {
        while screen.matches(wanted).count() < times {
            let chunk = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no {wanted:?} on the screen: {screen:?}"));
            screen.push_str(&String::from_utf8_lossy(&chunk));
        }
        screen.clone()
    };
    let mut prompts = 1;
    wait_for("catbot> ", prompts);
    for line in [
        &b"whoami\n"[..],
        b"\xff\xfe\n",
        b"roles grant <@U2> ops\n",
        b"roles revoke <@U2> ops\n",
    ] {
        stdin.write_all(line).unwrap();
        prompts += 1;
        if line.starts_with(b"roles revoke") {
            wait_for("Run it? [y/N] ", 1);
            stdin.write_all(b"y\n").unwrap();
        }
        wait_for("catbot> ", prompts);
    }
    stdin.write_all(b"exit\n").unwrap();
    assert!(child.wait().unwrap().success());
    let screen = wait_for("", 0);
    assert!(
        screen.contains("You are @U1 (`U1`), holding admin now."),
        "{screen}"
    );
    assert!(
        screen.contains("That line is not valid UTF-8, so it was skipped; type it again."),
        "{screen}"
    );
    // bold on a colour terminal; the confirmation ran
    assert!(
        screen.contains("@U1 granted \x1b[1mops\x1b[22m to @U2"),
        "{screen}"
    );
    assert!(
        screen.contains("@U1 revoked \x1b[1mops\x1b[22m from @U2"),
        "{screen}"
    );
    // the history is in the data directory: commands, not answers nor bad bytes
    let history = std::fs::read_to_string(dir.join("shell_history")).unwrap();
    let kept: Vec<&str> = history.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        kept,
        ["whoami", "roles grant <@U2> ops", "roles revoke <@U2> ops"]
    );
}

#[test]
fn say_reads_and_shows_times_in_the_local_zone() {
    // GIVEN the local zone is Tokyo (no DST, so the check holds all year)
    let dir = data_dir("zone");
    let say = |text: &str, zone: &str| {
        let out = opkit(&dir, &["say", "--user", "U1", "--roles", "admin"])
            .arg(text)
            .env("OPKIT_TIME_ZONE", zone)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        stdout(&out)
    };
    // WHEN a window is granted from a clock time a month ahead (a start is at
    // most 90 days ahead), for hours in long words
    let day = (chrono::Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%d");
    let granted = say(
        &format!("roles grant <@U2> ops from {day} 09:00 for 2 hours"),
        "Asia/Tokyo",
    );
    // THEN the reply shows it in Tokyo time, not as Slack's date token
    assert!(
        granted.contains(&format!("from {day} 09:00 JST for 2h")),
        "{granted}"
    );
    assert!(!granted.contains("<!date"), "{granted}");
    // AND someone whose machine is in UTC sees the same instant in UTC
    let listed = say("roles list <@U2>", "UTC");
    assert!(listed.contains(&format!("{day} 00:00 UTC")), "{listed}");
    // AND a zone that is not one stops the command line with one line naming it
    let bad = opkit(&dir, &["say", "--user", "U1", "whoami"])
        .env("OPKIT_TIME_ZONE", "Tokyo")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("OPKIT_TIME_ZONE is invalid: `Tokyo`"),
        "{bad:?}"
    );
}
