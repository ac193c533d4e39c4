//! Keeping a job's file access inside the configured data roots.

use std::path::{Component, Path, PathBuf};

use isotach_core::{PipelineSpec, SinkSpec, StepSpec};

/// URI schemes of remote stores (see `isotach_connectors::open_source`).
const REMOTE_SCHEMES: [&str; 6] = ["http://", "https://", "s3://", "gs://", "az://", "abfs://"];

/// Rewrites every file path of `spec` (the source and any climatology store, when they are files,
/// and every sink) to an absolute path inside one of `roots`, or says which path lies outside
/// them. Relative paths are taken from the first root. Symbolic links are followed as far as the
/// path exists, so a link cannot lead out of a root.
pub fn confine_spec(
    spec: &mut PipelineSpec,
    roots: &[PathBuf],
    allow_remote_sources: bool,
) -> Result<(), String> {
    spec.source.uri = confine_store("source.uri", &spec.source.uri, roots, allow_remote_sources)?;
    for (i, step) in spec.steps.iter_mut().enumerate() {
        if let StepSpec::Anomaly {
            climatology: Some(store),
            ..
        } = step
        {
            let field = format!("step[{i}].climatology.uri");
            store.uri = confine_store(&field, &store.uri, roots, allow_remote_sources)?;
        }
    }
    for (i, sink) in spec.sinks.iter_mut().enumerate() {
        let path = match sink {
            SinkSpec::Frames(frames) => match &mut frames.path {
                Some(path) => path,
                None => continue,
            },
            SinkSpec::Zarr(zarr) => &mut zarr.path,
            SinkSpec::Catalog(catalog) => &mut catalog.path,
        };
        *path = confine_path(&format!("sink[{i}].path"), path, roots)?;
    }
    Ok(())
}

/// Checks that every `infer` step of `spec` names only workers from `allowed`: a job must not make
/// the server open connections to hosts its operator did not list.
pub fn confine_inference_workers(spec: &PipelineSpec, allowed: &[String]) -> Result<(), String> {
    for (i, step) in spec.steps.iter().enumerate() {
        let StepSpec::Infer { workers, .. } = step else {
            continue;
        };
        let normal = |url: &str| url.trim_end_matches('/').to_owned();
        for (k, worker) in workers.iter().enumerate() {
            if !allowed.iter().any(|a| normal(a) == normal(worker)) {
                return Err(format!(
                    "step[{i}].workers[{k}] {worker:?} is not among this server's inference \
                     workers (inference_workers = {allowed:?})"
                ));
            }
        }
    }
    Ok(())
}

/// A store a job reads, named by `field`: a file path confined to `roots`, or a remote store when
/// they are allowed.
fn confine_store(
    field: &str,
    uri: &str,
    roots: &[PathBuf],
    allow_remote_sources: bool,
) -> Result<String, String> {
    if let Some(path) = uri.strip_prefix("file://") {
        confine_path(field, path, roots)
    } else if REMOTE_SCHEMES.iter().any(|scheme| uri.starts_with(scheme)) {
        if allow_remote_sources {
            Ok(uri.to_owned())
        } else {
            Err(format!(
                "{field} {uri:?} is a remote store, and this server reads only files under its \
                 data roots (allow_remote_sources = false)"
            ))
        }
    } else if uri.contains("://") {
        Err(format!(
            "{field} {uri:?} has a scheme this server does not read"
        ))
    } else {
        confine_path(field, uri, roots)
    }
}

/// `path` as an absolute path inside one of `roots` (relative paths from the first), or an error
/// naming `field`, the path and the roots.
pub fn confine_path(field: &str, path: &str, roots: &[PathBuf]) -> Result<String, String> {
    let outside = |resolved: &Path| {
        let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        format!(
            "{field} {path:?} ({}) is outside the data roots ({})",
            resolved.display(),
            roots.join(", ")
        )
    };
    let Some(first_root) = roots.first() else {
        return Err(format!("{field} {path:?}: the server has no data roots"));
    };
    let given = Path::new(path);
    let joined = if given.is_absolute() {
        given.to_owned()
    } else {
        first_root.join(given)
    };
    let Some(normal) = normalize(&joined) else {
        return Err(outside(&joined));
    };
    let resolved = resolve_links(&normal);
    if roots.iter().any(|root| resolved.starts_with(root)) {
        Ok(resolved.display().to_string())
    } else {
        Err(outside(&resolved))
    }
}

/// Removes `.` and resolves `..` without touching the file system; `None` when `..` climbs
/// above the top.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// The longest existing ancestor of `path` with its links resolved, and the rest appended.
fn resolve_links(path: &Path) -> PathBuf {
    let mut existing = path.to_owned();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            return rest
                .iter()
                .rev()
                .fold(canonical, |acc, part| acc.join(part));
        }
        match (
            existing.file_name().map(ToOwned::to_owned),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_owned();
            }
            _ => return path.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_inside_the_roots_and_escapes_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical").join("data");
        std::fs::create_dir_all(root.join("in")).expect("mkdir");
        let roots = [root.clone()];
        assert_eq!(
            confine_path("p", "in/s.zarr", &roots).expect("inside"),
            root.join("in/s.zarr").display().to_string()
        );
        assert_eq!(
            confine_path("p", "./new/../out", &roots).expect("inside"),
            root.join("out").display().to_string()
        );
        let escape = confine_path("sink[0].path", "../elsewhere", &roots).expect_err("outside");
        assert!(escape.contains("sink[0].path") && escape.contains("outside the data roots"));
        assert!(confine_path("p", "/etc/passwd", &roots).is_err());
        assert!(confine_path("p", "/../../etc", &roots).is_err());
    }

    #[test]
    fn a_climatology_store_outside_the_roots_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let spec = |climatology: &str| {
            PipelineSpec::from_toml_str(&format!(
                r#"
                name = "clim"
                [source]
                uri = "in.zarr"
                variables = ["t2m"]
                [[step]]
                op = "anomaly"
                input = "t2m"
                output = "a"
                climatology = {{ uri = "{climatology}", variable = "t2m" }}
                [[sink]]
                kind = "zarr"
                path = "out.zarr"
                variables = ["a"]
                "#
            ))
            .expect("spec")
        };
        let mut inside = spec("clim.zarr");
        confine_spec(&mut inside, std::slice::from_ref(&root), false).expect("inside");
        let StepSpec::Anomaly {
            climatology: Some(store),
            ..
        } = &inside.steps[0]
        else {
            panic!("anomaly")
        };
        assert_eq!(store.uri, root.join("clim.zarr").display().to_string());
        let e = confine_spec(
            &mut spec("/etc/clim.zarr"),
            std::slice::from_ref(&root),
            false,
        )
        .expect_err("outside");
        assert!(e.starts_with("step[0].climatology.uri"), "{e}");
        let e = confine_spec(&mut spec("s3://b/clim.zarr"), &[root], false).expect_err("remote");
        assert!(
            e.contains("step[0].climatology.uri \"s3://b/clim.zarr\" is a remote store"),
            "{e}"
        );
    }

    #[test]
    fn infer_steps_may_name_only_the_configured_workers() {
        let spec = |worker: &str| {
            PipelineSpec::from_toml_str(&format!(
                r#"
                name = "infer"
                [source]
                uri = "in.zarr"
                variables = ["ivt"]
                [[step]]
                op = "infer"
                model = "ar_unet"
                inputs = ["ivt"]
                output = "p"
                workers = ["{worker}"]
                [[sink]]
                kind = "zarr"
                path = "out.zarr"
                variables = ["p"]
                "#
            ))
            .expect("spec")
        };
        let allowed = vec!["http://127.0.0.1:8001/".to_owned()];
        confine_inference_workers(&spec("http://127.0.0.1:8001"), &allowed).expect("listed");
        let e = confine_inference_workers(&spec("http://169.254.169.254:80"), &allowed)
            .expect_err("not listed");
        assert_eq!(
            e,
            "step[0].workers[0] \"http://169.254.169.254:80\" is not among this server's \
             inference workers (inference_workers = [\"http://127.0.0.1:8001/\"])"
        );
        assert!(confine_inference_workers(&spec("http://127.0.0.1:8001"), &[]).is_err());
    }

    #[test]
    fn a_link_out_of_a_root_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canonical");
        let root = base.join("data");
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::create_dir_all(base.join("secret")).expect("mkdir");
        std::os::unix::fs::symlink(base.join("secret"), root.join("link")).expect("symlink");
        assert!(confine_path("p", "link/x", &[root]).is_err());
    }
}
