//! The minimum Rust the workspace declares is the one its locked dependencies
//! need: the highest `rust-version` any package in Cargo.lock declares. README
//! says the same. (The AWS SDK crates raise it from time to time; this test says
//! so when an update does.) And what the ingress, built alone, leaves out.

use std::process::Command;

fn version(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[test]
fn rust_version_is_the_highest_any_locked_dependency_declares() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let packages = meta["packages"].as_array().unwrap();
    let (needed, by) = packages
        .iter()
        .filter(|p| !members.contains(&p["id"].as_str().unwrap_or_default()))
        .filter_map(|p| Some((p["rust_version"].as_str()?, p["name"].as_str()?)))
        .max_by_key(|(v, _)| version(v))
        .expect("some dependency declares a rust-version");
    for p in packages
        .iter()
        .filter(|p| members.contains(&p["id"].as_str().unwrap_or_default()))
    {
        assert_eq!(
            p["rust_version"].as_str(),
            Some(needed),
            "{} declares rust-version {}, but {by} needs {needed}: set \
             [workspace.package] rust-version = \"{needed}\" (and README's prerequisites)",
            p["name"],
            p["rust_version"]
        );
    }
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(
        readme.contains(&format!("Rust **{needed} or newer**")),
        "README should name Rust {needed} as the minimum"
    );
}

/// The names of the packages `package`'s build links (normal dependencies), with the
/// features `package` enables alone: how `sam build` builds each function.
fn linked_alone(package: &str) -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "--locked", "--offline"])
        .current_dir(root)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// README, "Where the ingress's bytes go": the ingress speaks HTTP/1.1 to SQS and
/// Secrets Manager through opkit's own client on ring, and posts nothing to Slack, so
/// its build has no HTTP/2, no aws-lc, and neither the SDK's HTTPS client nor
/// reqwest's TLS. The worker, which needs them, is the check that the question is
/// asked right.
#[test]
fn the_ingress_alone_builds_no_http2_and_no_aws_lc() {
    let unwanted = [
        "h2",
        "aws-lc-rs",
        "aws-lc-sys",
        "aws-smithy-http-client",
        "hyper-rustls",
    ];
    let ingress = linked_alone("opkit-ingress");
    assert!(ingress.iter().any(|p| p == "ring"), "{ingress:?}");
    for name in unwanted {
        assert!(
            !ingress.iter().any(|p| p == name),
            "the ingress builds {name}"
        );
    }
    let worker = linked_alone("opkit-worker");
    for name in ["h2", "aws-lc-rs", "aws-smithy-http-client"] {
        assert!(worker.iter().any(|p| p == name), "the worker has no {name}");
    }
}
