//! End-to-end tests of Isotach: the real `isotach` binary, run as separate processes.
//!
//! The binary is built by `cargo build -p isotach` (the test command does it first); these helpers
//! find it in the target directory and run it.

use std::path::PathBuf;
use std::process::{Command, Output};

pub mod wall;
pub mod x11;

/// The `isotach` binary of this workspace's dev build.
pub fn isotach_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug").join("isotach")
}

/// Runs `isotach ARGS` in `dir` and returns its output, whatever its exit status.
pub fn isotach(dir: &std::path::Path, args: &[&str]) -> Output {
    let bin = isotach_bin();
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p isotach`",
        bin.display()
    );
    Command::new(&bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()))
}

/// Runs `isotach ARGS` in `dir` and fails the test, showing stderr, unless it succeeds.
pub fn isotach_ok(dir: &std::path::Path, args: &[&str]) -> String {
    let out = isotach(dir, args);
    assert!(
        out.status.success(),
        "isotach {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a synthetic atmosphere `name` in `dir` (`isotach generate`) at `resolution_deg` with
/// `steps` time steps.
pub fn generate(dir: &std::path::Path, name: &str, resolution_deg: u32, steps: usize) {
    isotach_ok(
        dir,
        &[
            "generate",
            "--out",
            name,
            "--resolution-deg",
            &resolution_deg.to_string(),
            "--steps",
            &steps.to_string(),
        ],
    );
}

/// The workspace root, where `examples/` and the shipped model live.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Certificates for TLS tests, made by `tests/tls/make-certs.sh` in `dir/certs` (openssl): a CA
/// `ca.pem`, a server certificate it signs for localhost and 127.0.0.1 (`server.pem`,
/// `server.key`), and an unrelated CA `other-ca.pem`.
pub fn make_test_certs(dir: &std::path::Path) -> PathBuf {
    let certs = dir.join("certs");
    let script = workspace_root().join("tests/tls/make-certs.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&certs)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed (is openssl installed?):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    certs
}
