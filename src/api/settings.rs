//! `config`: a repo's settings. `Setting` is the one list of the settable keys: their names,
//! how a value given on the command line is checked and set, and how it is shown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A repo's settings as `jjfs config` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RepoSettings {
    pub(crate) sync_interval: u64,
    pub(crate) rescan_interval: u64,
    pub(crate) push_interval: u64,
    #[serde(default = "default_push_delay")]
    pub(crate) push_delay: u64,
    #[serde(default = "default_fetch_interval")]
    pub(crate) fetch_interval: u64,
    pub(crate) trunk: String,
    pub(crate) ignore: Vec<String>,
    /// How `jjfs open` mounts when it is not given `--mode`.
    #[serde(default)]
    pub(crate) mount_mode: super::ModeChoice,
    /// Shown, not set here (`jjfs remote add`).
    pub(crate) remote: Option<String>,
}

fn default_push_delay() -> u64 {
    crate::config::DEFAULT_PUSH_DELAY
}

fn default_fetch_interval() -> u64 {
    crate::config::DEFAULT_FETCH_INTERVAL
}

/// A setting `jjfs config KEY VALUE` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setting {
    SyncInterval,
    RescanInterval,
    PushInterval,
    PushDelay,
    FetchInterval,
    Trunk,
    Ignore,
    MountMode,
}

/// One setting's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum SettingValue {
    Seconds(u64),
    Text(String),
    List(Vec<String>),
    Flag(bool),
}

impl Setting {
    pub(crate) const ALL: [Self; 8] = [
        Self::SyncInterval,
        Self::RescanInterval,
        Self::PushInterval,
        Self::PushDelay,
        Self::FetchInterval,
        Self::Trunk,
        Self::Ignore,
        Self::MountMode,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::SyncInterval => "sync_interval",
            Self::RescanInterval => "rescan_interval",
            Self::PushInterval => "push_interval",
            Self::PushDelay => "push_delay",
            Self::FetchInterval => "fetch_interval",
            Self::Trunk => "trunk",
            Self::Ignore => "ignore",
            Self::MountMode => "mount_mode",
        }
    }

    /// One line for `jjfs config --help`.
    pub(crate) fn about(self) -> &'static str {
        match self {
            Self::SyncInterval => "longest a detected change waits before it is synced, in seconds",
            Self::RescanInterval => "seconds between full scans of every mount (a safety net)",
            Self::PushInterval => {
                "seconds between full fetch-and-push cycles with each remote (a safety net)"
            }
            Self::PushDelay => "seconds of quiet after a local change before it is pushed",
            Self::FetchInterval => "seconds between checks of each remote for a moved trunk",
            Self::Trunk => "the bookmark that holds the shared history and is pushed",
            Self::Ignore => "gitignore patterns kept local: comma-separated, or a JSON list",
            Self::MountMode => {
                "how `jjfs open` mounts without --mode: auto (FUSE when it can, else direct), fuse or direct"
            }
        }
    }

    /// `a, b, c`: for messages and help.
    pub(crate) fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    pub(crate) fn get(self, settings: &RepoSettings) -> SettingValue {
        match self {
            Self::SyncInterval => SettingValue::Seconds(settings.sync_interval),
            Self::RescanInterval => SettingValue::Seconds(settings.rescan_interval),
            Self::PushInterval => SettingValue::Seconds(settings.push_interval),
            Self::PushDelay => SettingValue::Seconds(settings.push_delay),
            Self::FetchInterval => SettingValue::Seconds(settings.fetch_interval),
            Self::Trunk => SettingValue::Text(settings.trunk.clone()),
            Self::Ignore => SettingValue::List(settings.ignore.clone()),
            Self::MountMode => SettingValue::Text(settings.mount_mode.name().to_owned()),
        }
    }

    /// Sets the setting from its command-line form, or says why the value is refused.
    pub(crate) fn set(self, settings: &mut RepoSettings, value: &str) -> Result<(), String> {
        let seconds = |v: &str| -> Result<u64, String> {
            match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!(
                    "{} must be a whole number of seconds, at least 1 (got {v:?})",
                    self.name()
                )),
            }
        };
        match self {
            Self::SyncInterval => settings.sync_interval = seconds(value)?,
            Self::RescanInterval => settings.rescan_interval = seconds(value)?,
            Self::PushInterval => settings.push_interval = seconds(value)?,
            Self::PushDelay => settings.push_delay = seconds(value)?,
            Self::FetchInterval => settings.fetch_interval = seconds(value)?,
            Self::Trunk => {
                let name = value.trim();
                if name.is_empty() || name.contains(char::is_whitespace) || name.starts_with('-') {
                    return Err(format!("{name:?} is not a valid bookmark name"));
                }
                settings.trunk = name.to_owned();
            }
            Self::Ignore => settings.ignore = parse_list(value),
            Self::MountMode => settings.mount_mode = value.parse()?,
        }
        Ok(())
    }
}

impl std::str::FromStr for Setting {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown setting {name:?}; the settings are {}",
                    Self::names()
                )
            })
    }
}

impl Serialize for Setting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Setting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A list given as JSON (`["a","b"]`) or comma-separated (`a,b`); empty for none.
fn parse_list(value: &str) -> Vec<String> {
    if let Ok(list) = serde_json::from_str::<Vec<String>>(value) {
        return list;
    }
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ConfigParams {
    /// The repo (default `default` for one setting; every repo when showing all).
    #[serde(default)]
    pub(crate) repo: Option<String>,
    #[serde(default)]
    pub(crate) key: Option<Setting>,
    /// The new value, in its command-line form.
    #[serde(default)]
    pub(crate) value: Option<String>,
}

/// What `config` answers, by what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum ConfigResult {
    /// No repo and no key: every repo's settings.
    All {
        repos: BTreeMap<String, RepoSettings>,
    },
    /// A repo and no key.
    Repo(RepoSettings),
    /// A key and no value.
    One(SettingValue),
    /// A key and a value: it was set (null on the wire).
    Set,
}

/// The daemon's own settings (`jjfs config --global`), kept in config.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GlobalSettings {
    /// Desktop notices of new conflicts.
    pub(crate) notify: bool,
    /// `HOST:PORT` where `/metrics` is served; empty: off.
    pub(crate) metrics_listen: String,
}

/// A setting `jjfs config --global KEY VALUE` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobalSetting {
    Notify,
    MetricsListen,
}

impl GlobalSetting {
    pub(crate) const ALL: [Self; 2] = [Self::Notify, Self::MetricsListen];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Notify => "notify",
            Self::MetricsListen => "metrics_listen",
        }
    }

    pub(crate) fn about(self) -> &'static str {
        match self {
            Self::Notify => "desktop notices of new conflicts: true or false (default true)",
            Self::MetricsListen => {
                "HOST:PORT where /metrics is served, e.g. 127.0.0.1:9464; empty: off (default)"
            }
        }
    }

    pub(crate) fn get(self, settings: &GlobalSettings) -> SettingValue {
        match self {
            Self::Notify => SettingValue::Flag(settings.notify),
            Self::MetricsListen => SettingValue::Text(settings.metrics_listen.clone()),
        }
    }

    /// Sets the setting from its command-line form, or says why the value is refused.
    pub(crate) fn set(self, settings: &mut GlobalSettings, value: &str) -> Result<(), String> {
        match self {
            Self::Notify => {
                settings.notify = match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "on" | "yes" | "1" => true,
                    "false" | "off" | "no" | "0" => false,
                    _ => return Err(format!("notify must be true or false (got {value:?})")),
                }
            }
            Self::MetricsListen => {
                crate::metrics::parse_listen(value).map_err(|e| e.to_string())?;
                settings.metrics_listen = value.trim().to_owned();
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for GlobalSetting {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                format!("unknown global setting {name:?}; the global settings are notify, metrics_listen")
            })
    }
}

impl Serialize for GlobalSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for GlobalSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct GlobalConfigParams {
    #[serde(default)]
    pub(crate) key: Option<GlobalSetting>,
    /// The new value, in its command-line form.
    #[serde(default)]
    pub(crate) value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum GlobalConfigResult {
    All(GlobalSettings),
    One(SettingValue),
    /// Set (null on the wire).
    Set,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RepoSettings {
        RepoSettings {
            sync_interval: 2,
            rescan_interval: 300,
            push_interval: 300,
            push_delay: 5,
            fetch_interval: 30,
            trunk: "main".into(),
            ignore: vec![],
            mount_mode: Default::default(),
            remote: None,
        }
    }

    #[test]
    fn settings_are_validated() {
        let mut s = settings();
        Setting::SyncInterval.set(&mut s, "5").unwrap();
        assert_eq!(s.sync_interval, 5);
        assert!(Setting::SyncInterval.set(&mut s, "0").is_err());
        assert!(Setting::PushInterval.set(&mut s, "soon").is_err());
        Setting::PushDelay.set(&mut s, "1").unwrap();
        Setting::FetchInterval.set(&mut s, "10").unwrap();
        assert_eq!((s.push_delay, s.fetch_interval), (1, 10));
        assert!(Setting::FetchInterval.set(&mut s, "0").is_err());
        Setting::Ignore.set(&mut s, "*.tmp, build/").unwrap();
        assert_eq!(s.ignore, vec!["*.tmp", "build/"]);
        Setting::Ignore.set(&mut s, r#"["a","b c"]"#).unwrap();
        assert_eq!(s.ignore, vec!["a", "b c"]);
        assert!(Setting::Trunk.set(&mut s, "has space").is_err());
        assert_eq!(
            Setting::Ignore.get(&s),
            SettingValue::List(vec!["a".into(), "b c".into()])
        );
        Setting::MountMode.set(&mut s, "direct").unwrap();
        assert_eq!(
            Setting::MountMode.get(&s),
            SettingValue::Text("direct".into())
        );
        assert!(Setting::MountMode.set(&mut s, "nfs").is_err());
    }

    #[test]
    fn names_parse_back_and_unknown_ones_list_the_settings() {
        for setting in Setting::ALL {
            assert_eq!(setting.name().parse::<Setting>(), Ok(setting));
        }
        let err = "colour".parse::<Setting>().unwrap_err();
        assert!(err.contains("sync_interval, rescan_interval"), "{err}");
    }

    #[test]
    fn global_settings_are_validated() {
        let mut g = GlobalSettings {
            notify: true,
            metrics_listen: String::new(),
        };
        GlobalSetting::Notify.set(&mut g, "false").unwrap();
        assert!(!g.notify);
        assert!(GlobalSetting::Notify.set(&mut g, "maybe").is_err());
        GlobalSetting::MetricsListen
            .set(&mut g, "127.0.0.1:9464")
            .unwrap();
        assert_eq!(g.metrics_listen, "127.0.0.1:9464");
        assert!(GlobalSetting::MetricsListen.set(&mut g, "nope").is_err());
        GlobalSetting::MetricsListen.set(&mut g, "").unwrap();
        assert_eq!(g.metrics_listen, "");
        let flag: GlobalConfigResult = serde_json::from_str("false").unwrap();
        assert_eq!(flag, GlobalConfigResult::One(SettingValue::Flag(false)));
    }

    #[test]
    fn results_keep_their_wire_shape() {
        assert_eq!(
            serde_json::to_value(ConfigResult::Set).unwrap(),
            serde_json::Value::Null
        );
        let one: ConfigResult = serde_json::from_str("300").unwrap();
        assert_eq!(one, ConfigResult::One(SettingValue::Seconds(300)));
        let all = ConfigResult::All {
            repos: [("r".to_owned(), settings())].into(),
        };
        let text = serde_json::to_string(&all).unwrap();
        assert_eq!(serde_json::from_str::<ConfigResult>(&text).unwrap(), all);
        let null: ConfigResult = serde_json::from_str("null").unwrap();
        assert_eq!(null, ConfigResult::Set);
    }
}
