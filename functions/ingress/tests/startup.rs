//! The ingress Lambda's binary refuses to start without an explicit team allow-list,
//! or without the AWS settings Lambda gives every function.

use std::process::Command;

/// Runs the `ingress` binary with the settings it needs, `OPKIT_TEAM_IDS` as
/// given (`None`: unset), outside Lambda; returns its exit status and output.
fn start(team_ids: Option<&str>) -> (Option<i32>, String) {
    start_without(team_ids, &[])
}

/// [`start`], with the variables `unset` removed from its environment.
fn start_without(team_ids: Option<&str>, unset: &[&str]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ingress"));
    command
        .env("SLACK_SIGNING_SECRET", "8f742231b10e8888abcd99yyyzzz85a5")
        .env("OPKIT_QUEUE_URL", "http://127.0.0.1:9/000000000000/jobs")
        .env("OPKIT_ENVELOPE_KEY", "startup-test-envelope-key-0123456789")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "startup-test")
        .env("AWS_SECRET_ACCESS_KEY", "startup-test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "error")
        .env("RUST_BACKTRACE", "0")
        .env_remove("OPKIT_TEAM_IDS")
        // Outside Lambda: the runtime stops at once for want of its settings.
        .env_remove("AWS_LAMBDA_FUNCTION_NAME")
        .env_remove("AWS_LAMBDA_RUNTIME_API");
    if let Some(value) = team_ids {
        command.env("OPKIT_TEAM_IDS", value);
    }
    for name in unset {
        command.env_remove(name);
    }
    let output = command.output().expect("run the ingress binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn an_unset_or_empty_team_allow_list_stops_the_deployed_ingress_naming_it() {
    for team_ids in [None, Some(""), Some(" , ")] {
        let (code, output) = start(team_ids);
        assert_ne!(code, Some(0), "{team_ids:?}: {output}");
        assert!(
            output.contains("OPKIT_TEAM_IDS is not set") && output.contains("`any`"),
            "{team_ids:?}: {output}"
        );
    }
}

#[test]
fn an_explicit_choice_passes_the_check() {
    // Outside Lambda the binary stops later, when the Lambda runtime finds none of
    // its settings; what matters is that the ingress was built.
    for team_ids in ["any", "T0001,E0001"] {
        let (code, output) = start(Some(team_ids));
        assert_ne!(code, Some(0), "{team_ids}: {output}");
        assert!(
            !output.contains("cannot start the ingress") && !output.contains("OPKIT_TEAM_IDS"),
            "{team_ids}: {output}"
        );
    }
}

#[test]
fn without_the_aws_settings_lambda_gives_it_the_ingress_names_the_missing_one() {
    // Region and credentials come from the environment alone (opkit::aws::lambda_config).
    for (unset, named) in [
        (
            &["AWS_REGION", "AWS_DEFAULT_REGION"][..],
            "AWS_REGION is not set",
        ),
        (&["AWS_ACCESS_KEY_ID"][..], "AWS_ACCESS_KEY_ID is not set"),
        (
            &["AWS_SECRET_ACCESS_KEY"][..],
            "AWS_SECRET_ACCESS_KEY is not set",
        ),
    ] {
        let (code, output) = start_without(Some("any"), unset);
        assert_ne!(code, Some(0), "{unset:?}: {output}");
        assert!(
            output.contains("cannot start the ingress") && output.contains(named),
            "{unset:?}: {output}"
        );
    }
}
