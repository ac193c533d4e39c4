//! Real servers on 127.0.0.1 for the object-store tests: `s3s-fs` (S3 that checks SigV4
//! signatures) and a Python HTTP server that honours range requests. Each is killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Access key of the S3 server.
pub const ACCESS_KEY: &str = "isotach-test";
/// Its secret key.
pub const SECRET_KEY: &str = "isotach-secret-key";

/// A server process, killed when the test ends.
pub struct Server {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn wait_for(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 20 s");
}

pub fn s3s_fs() -> PathBuf {
    if let Some(path) = std::env::var_os("ISOTACH_S3S_FS") {
        return path.into();
    }
    let cached = super::workspace_root().join(".ci/cache/tools/bin/s3s-fs");
    assert!(
        cached.exists(),
        "{} is missing: ./scripts/test.sh installs the S3 test server (cargo install s3s-fs), \
         or set ISOTACH_S3S_FS",
        cached.display()
    );
    cached
}

/// `s3s-fs` serving each folder of `root` as a bucket.
pub fn s3_server(root: &Path) -> Server {
    let port = free_port();
    let mut child = Command::new(s3s_fs())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start s3s-fs");
    wait_for(port, &mut child, "s3s-fs");
    Server { child, port }
}

/// A range-capable HTTP server over `root`.
pub fn http_server(root: &Path) -> Server {
    let port = free_port();
    let mut child = Command::new(super::python())
        .args([
            "-m",
            "RangeHTTPServer",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start RangeHTTPServer");
    wait_for(port, &mut child, "RangeHTTPServer");
    Server { child, port }
}
