//! Compiles every `.proto` file under this crate into Rust, without a system `protoc`.
//!
//! `protox` parses the files (with `proto/` as the one include directory, plus the well-known
//! types it carries built in) into a `FileDescriptorSet`; `tonic-prost-build` turns that into
//! messages, clients and servers in `OUT_DIR`. The well-known types (`google.protobuf.*`) are not
//! generated: they map to `prost-types`. The descriptor set is also written to
//! `OUT_DIR/isotach_descriptor.bin`, for gRPC server reflection and for tests that check field
//! numbers.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use protox::prost::Message;

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);

    let mut protos = Vec::new();
    collect_protos(&root, &root, &mut protos)?;
    protos.sort();
    if protos.is_empty() {
        return Err(format!("no .proto files found under {}", root.display()).into());
    }

    println!("cargo:rerun-if-changed=build.rs");
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", root.join(proto).display());
    }
    // Directories too, so that a newly added file triggers a rebuild.
    for dir in ["inference", "isotach"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }

    // Names relative to the include directory are the names imports use.
    let fds = protox::compile(&protos, [&root]).map_err(|e| format!("protox: {e}"))?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    fs::write(out_dir.join("isotach_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}

/// Finds `.proto` files below `dir`, as paths relative to `root`, skipping build output and
/// hidden folders.
fn collect_protos(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if name.starts_with('.') || name == "target" {
                continue;
            }
            collect_protos(root, &path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path.strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(())
}
