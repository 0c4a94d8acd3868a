//! The project's release binaries, for tests that run every service as its
//! own process.

use std::path::{Path, PathBuf};

/// The folder of the release binaries: `$ANPR_BIN_DIR`, else `release/` next
/// to the profile folder of the running test executable (the same target
/// folder the test was built in), else `$CARGO_TARGET_DIR/release`, else the
/// workspace's `target/release`.
pub fn release_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ANPR_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // <target>/<profile>/deps/<test>-<hash>
    let beside_test = std::env::current_exe().ok().and_then(|exe| {
        exe.parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .map(|target| target.join("release"))
    });
    if let Some(dir) = beside_test.filter(|dir| dir.is_dir()) {
        return dir;
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("release");
    }
    workspace_root().join("target").join("release")
}

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// A release binary by name; panics with what to do when it is missing.
pub fn release_bin(name: &str) -> PathBuf {
    find_release_bin(name).unwrap_or_else(|err| panic!("{err}"))
}

/// A release binary by name, or an error that says what to do.
pub fn find_release_bin(name: &str) -> anyhow::Result<PathBuf> {
    find_bin_in(&release_dir(), name)
}

/// The binary `name` in `dir`, or an error that says what to do.
pub fn find_bin_in(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: build the release binaries first with `cargo build --release --bins` \
         (scripts/test does), or point ANPR_BIN_DIR at a folder that has them",
        path.display()
    );
    Ok(path)
}

/// Where the recognizer's models are: `$ANPR_MODELS_DIR`, else `models/`
/// in the repository (filled by scripts/fetch-models). Panics when missing.
pub fn models_dir() -> PathBuf {
    find_models_dir().unwrap_or_else(|err| panic!("{err}"))
}

/// [`models_dir`], or an error that says what to do.
pub fn find_models_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("ANPR_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models"));
    anyhow::ensure!(
        dir.join("lib").is_dir(),
        "no recognizer models in {}: run scripts/fetch-models, or set ANPR_MODELS_DIR",
        dir.display()
    );
    Ok(dir)
}
