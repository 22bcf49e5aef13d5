//! The launchd agent: `~/Library/LaunchAgents/com.jjfs.daemon.plist`, run at load and kept
//! alive when it exits with a failure. (macOS is a target of this code, not of the tests run
//! here: they check the plist's shape only.)

use std::path::Path;

use plist::{Dictionary, Value};

use super::{ServiceError, Spec, run};
use crate::paths::HOME_ENV;

pub(crate) const LABEL: &str = "com.jjfs.daemon";

/// The agent's plist, written by the `plist` crate (which escapes every value).
pub(crate) fn render(spec: &Spec) -> String {
    let mut env = Dictionary::new();
    for (name, value) in &spec.env {
        env.insert(name.clone(), value.clone().into());
    }
    let mut keep_alive = Dictionary::new();
    keep_alive.insert("SuccessfulExit".into(), false.into());
    let mut agent = Dictionary::new();
    agent.insert("Label".into(), LABEL.into());
    agent.insert(
        "ProgramArguments".into(),
        Value::Array(vec![
            spec.program.display().to_string().into(),
            "--foreground".into(),
        ]),
    );
    agent.insert("EnvironmentVariables".into(), env.into());
    agent.insert("RunAtLoad".into(), true.into());
    agent.insert("KeepAlive".into(), keep_alive.into());
    agent.insert("ProcessType".into(), "Background".into());
    let mut xml = Vec::new();
    Value::Dictionary(agent)
        .to_writer_xml(&mut xml)
        .expect("a plist of strings writes to memory");
    let mut text = String::from_utf8(xml).expect("plist XML is UTF-8");
    // A note for whoever opens the file, after the XML prolog.
    if let Some(at) = text.find("<plist") {
        text.insert_str(
            at,
            "<!-- Written by `jjfs install`; remove it with `jjfs uninstall`. -->\n",
        );
    }
    text.push('\n');
    text
}

/// Whether the plist `text` runs the daemon of state directory `home`.
pub(crate) fn names_home(text: &str, home: &Path) -> bool {
    let Ok(Value::Dictionary(agent)) = Value::from_reader_xml(text.as_bytes()) else {
        return false;
    };
    agent
        .get("EnvironmentVariables")
        .and_then(Value::as_dictionary)
        .and_then(|env| env.get(HOME_ENV))
        .and_then(Value::as_string)
        == Some(home.display().to_string().as_str())
}

pub(crate) fn check_available() -> Result<(), ServiceError> {
    if cfg!(target_os = "macos") {
        run("launchctl", &["version"]).map(drop)
    } else {
        Err(ServiceError::Unavailable(
            "launchd runs on macOS only".to_owned(),
        ))
    }
}

pub(crate) fn load(file: &Path) -> Result<(), ServiceError> {
    run("launchctl", &["load", "-w", &file.display().to_string()]).map(drop)
}

pub(crate) fn unload(file: &Path) -> Result<(), ServiceError> {
    run("launchctl", &["unload", "-w", &file.display().to_string()]).map(drop)
}

pub(crate) fn start() -> Result<(), ServiceError> {
    run("launchctl", &["start", LABEL]).map(drop)
}

pub(crate) fn stop() -> Result<(), ServiceError> {
    run("launchctl", &["stop", LABEL]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_for_xml() {
        let spec = Spec {
            program: "/Applications/A&B/jjfsd".into(),
            env: vec![(HOME_ENV.to_owned(), "/Users/me/<notes>".to_owned())],
        };
        let plist = render(&spec);
        assert!(
            plist.contains("<string>/Applications/A&amp;B/jjfsd</string>"),
            "{plist}"
        );
        assert!(names_home(&plist, Path::new("/Users/me/<notes>")));
        assert!(!names_home(&plist, Path::new("/Users/me")));
    }
}
