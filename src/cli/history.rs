//! What the history commands share: resolving PATH against the mount the user stands in.

use std::path::Path;

use crate::rpc::methods::HistoryParams;

/// Parameters with the repo, the paths as given and the current directory, which the daemon
/// resolves (it knows the mounts).
pub fn params(repo: Option<String>, paths: &[impl AsRef<Path>]) -> anyhow::Result<HistoryParams> {
    let cwd = std::env::current_dir()?;
    Ok(HistoryParams {
        repo,
        paths: paths
            .iter()
            .map(|p| p.as_ref().to_string_lossy().into_owned())
            .collect(),
        cwd: Some(cwd),
        ..HistoryParams::default()
    })
}
