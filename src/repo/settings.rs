//! jj-lib settings built in-process. The user's own jj config is not read, so jjfs behaves the
//! same whatever is in `~/.config/jj`; only the identity comes from the environment.

use jj_lib::config::{ConfigLayer, ConfigSource, ConfigValue, StackedConfig};
use jj_lib::settings::UserSettings;

use super::RepoError;

/// Who jjfs commits as: `JJ_USER`/`JJ_EMAIL`, else git's author variables, else a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl Identity {
    pub fn from_env() -> Self {
        let var = |names: &[&str]| {
            names
                .iter()
                .filter_map(|n| std::env::var(n).ok())
                .find(|v| !v.trim().is_empty())
        };
        Self {
            name: var(&["JJ_USER", "GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"])
                .unwrap_or_else(|| "jjfs".to_owned()),
            email: var(&[
                "JJ_EMAIL",
                "GIT_AUTHOR_EMAIL",
                "GIT_COMMITTER_EMAIL",
                "EMAIL",
            ])
            .unwrap_or_else(|| "jjfs@localhost".to_owned()),
        }
    }
}

/// Settings for every jj-lib call of the daemon.
pub fn user_settings(identity: &Identity) -> Result<UserSettings, RepoError> {
    let mut config = StackedConfig::with_defaults();
    let mut layer = ConfigLayer::empty(ConfigSource::User);
    let mut set = |key: &'static str, value: ConfigValue| {
        layer
            .set_value(key, value)
            .map(drop)
            .map_err(|e| RepoError::Settings(e.to_string()))
    };
    set("user.name", identity.name.as_str().into())?;
    set("user.email", identity.email.as_str().into())?;
    set("operation.hostname", hostname().into())?;
    set("operation.username", "jjfs".into())?;
    // Files of any size sync; jj's default (1 MiB) would silently leave big files behind.
    set("snapshot.max-new-file-size", i64::MAX.into())?;
    config.add_layer(layer);
    UserSettings::from_config(config).map_err(|e| RepoError::Settings(e.to_string()))
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}
