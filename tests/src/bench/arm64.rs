//! Where the arm64 `bootstrap`s are, for the cold-start suite under qemu-user.
//!
//! Two layouts, one per way of building them on an x86_64 machine:
//! - **cargo's** (`cargo build --release --target aarch64-unknown-linux-gnu`):
//!   `DIR/ingress`, `DIR/worker`, `DIR/expiry` and the floor at `DIR/examples/floor`,
//!   where `DIR` is `target/aarch64-unknown-linux-gnu/release`;
//! - **`sam build`'s** (what `sam deploy` uploads): `DIR/<logical id>/bootstrap`
//!   for the template's `IngressFunction`, `WorkerFunction` and `ExpiryFunction`,
//!   where `DIR` is `.aws-sam/build` or its `--build-dir`. `sam build` makes no floor.

use std::path::{Path, PathBuf};

/// The template's logical ids of the three functions (template.yaml), in the
/// directories `sam build` writes their `bootstrap`s to.
pub const SAM_FUNCTIONS: [&str; 3] = ["IngressFunction", "WorkerFunction", "ExpiryFunction"];

/// The three functions' arm64 `bootstrap`s, and the floor when the build has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstraps {
    /// What the report calls the build (`cargo` or `sam build`).
    pub built_by: &'static str,
    /// The ingress's `bootstrap`.
    pub ingress: PathBuf,
    /// The worker's.
    pub worker: PathBuf,
    /// The expiry's.
    pub expiry: PathBuf,
    /// The bare `lambda_http` echo built with the same profile, if built.
    pub floor: Option<PathBuf>,
}

impl Bootstraps {
    /// cargo's layout under `dir` (`target/aarch64-unknown-linux-gnu/release`).
    pub fn cargo(dir: &Path) -> Self {
        Self {
            built_by: "cargo",
            ingress: dir.join("ingress"),
            worker: dir.join("worker"),
            expiry: dir.join("expiry"),
            floor: Some(dir.join("examples/floor")),
        }
    }

    /// `sam build`'s layout under `dir` (`.aws-sam/build` or its `--build-dir`).
    pub fn sam_build(dir: &Path) -> Self {
        let [ingress, worker, expiry] = SAM_FUNCTIONS.map(|id| dir.join(id).join("bootstrap"));
        Self {
            built_by: "sam build",
            ingress,
            worker,
            expiry,
            floor: None,
        }
    }

    /// Every file named, floor included.
    pub fn files(&self) -> Vec<&Path> {
        [&self.ingress, &self.worker, &self.expiry]
            .into_iter()
            .chain(self.floor.as_ref())
            .map(PathBuf::as_path)
            .collect()
    }

    /// Checks that every `bootstrap` is there before anything runs, so a build that
    /// did not finish is named as such rather than reported as a failed start.
    ///
    /// # Errors
    /// One line per missing file, naming it and how to build it.
    pub fn check_present(&self) -> Result<(), String> {
        let missing: Vec<String> = self
            .files()
            .into_iter()
            .filter(|file| !file.is_file())
            .map(|file| format!("{}: no such file", file.display()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let how = match self.built_by {
            "sam build" => "build them with `bash infra/build-arm64.sh` (infra/DEPLOY.md)",
            _ => "build them with `OPKIT_BENCH_ARM64=1 bash infra/bench.sh cold`",
        };
        Err(format!(
            "the arm64 bootstraps ({}) are not all built:\n{}\n{how}",
            self.built_by,
            missing.join("\n")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sam_build_layout_is_one_folder_per_function_of_the_template() {
        let b = Bootstraps::sam_build(Path::new("/b"));
        assert_eq!(b.ingress, Path::new("/b/IngressFunction/bootstrap"));
        assert_eq!(b.worker, Path::new("/b/WorkerFunction/bootstrap"));
        assert_eq!(b.expiry, Path::new("/b/ExpiryFunction/bootstrap"));
        assert_eq!(b.floor, None, "sam build makes no floor");
    }

    #[test]
    fn the_logical_ids_are_the_templates() {
        let template =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
                .expect("read template.yaml");
        for id in SAM_FUNCTIONS {
            let declared = format!("\n  {id}:\n    Type: AWS::Serverless::Function\n");
            assert!(
                template.contains(&declared),
                "{id} is not a function of the template"
            );
        }
    }

    #[test]
    fn cargo_layout_has_the_floor_among_the_examples() {
        let b = Bootstraps::cargo(Path::new("/t"));
        assert_eq!(b.ingress, Path::new("/t/ingress"));
        assert_eq!(b.floor.as_deref(), Some(Path::new("/t/examples/floor")));
        assert_eq!(b.files().len(), 4);
    }

    #[test]
    fn a_missing_bootstrap_is_named_with_how_to_build_it() {
        let dir = std::env::temp_dir().join(format!("opkit-arm64-{}", uuid::Uuid::new_v4()));
        let b = Bootstraps::sam_build(&dir);
        for file in [&b.ingress, &b.expiry] {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, b"\x7fELF").unwrap();
        }
        let err = b.check_present().unwrap_err();
        assert!(
            err.contains("WorkerFunction/bootstrap: no such file"),
            "{err}"
        );
        assert!(!err.contains("IngressFunction"), "{err}");
        assert!(err.contains("infra/build-arm64.sh"), "{err}");

        std::fs::create_dir_all(b.worker.parent().unwrap()).unwrap();
        std::fs::write(&b.worker, b"\x7fELF").unwrap();
        assert_eq!(b.check_present(), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
