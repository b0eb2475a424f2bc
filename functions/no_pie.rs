//! Build script of the three Lambda functions (`build = "../no_pie.rs"`): their
//! release `bootstrap`s are linked as ordinary executables, not position-independent
//! ones.
//!
//! A position-independent executable carries a relocation for every pointer in its
//! data (338,352 B of `.rela.dyn` in the ingress; 2,544 B without) that the loader
//! applies at each start, so that the executable's own image can be placed at a random
//! address. Linked without, the image sits at a fixed address (shared libraries, stack
//! and heap are still randomised): a trade of that hardening for 0.34 MB and the
//! start-up work, for a process that only ever runs inside its own Lambda microVM.
//! Only release builds for Linux on x86_64 and aarch64 with glibc (what Lambda's
//! `provided.al2023` runs) are linked so; debug builds and tests keep the toolchain's
//! default. A build script, not `RUSTFLAGS`, because `sam build` runs cargo-lambda
//! without a way to pass them.

fn main() {
    println!("cargo:rerun-if-changed=../no_pie.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let release = var("PROFILE") == "release";
    let lambda_target = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && matches!(var("CARGO_CFG_TARGET_ARCH").as_str(), "x86_64" | "aarch64");
    if release && lambda_target {
        // Every linked target of the package, so the ingress's `floor` example (the
        // cold-start harness's yardstick) is linked as the bootstraps are.
        println!("cargo:rustc-link-arg=-no-pie");
    }
}
