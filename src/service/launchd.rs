//! The launchd agent: `~/Library/LaunchAgents/com.jjfs.daemon.plist`, run at load and kept
//! alive when it exits with a failure. (macOS is a target of this code, not of the tests run
//! here: they check the plist's shape only.)

use std::path::Path;

use super::{ServiceError, Spec, run};
use crate::paths::HOME_ENV;

pub const LABEL: &str = "com.jjfs.daemon";

pub fn render(spec: &Spec) -> String {
    let mut text = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <!-- Written by `jjfs install`; remove it with `jjfs uninstall`. -->\n\
         <plist version=\"1.0\">\n\
         <dict>\n",
    );
    text.push_str(&format!("\t<key>Label</key>\n\t<string>{LABEL}</string>\n"));
    text.push_str(&format!(
        "\t<key>ProgramArguments</key>\n\t<array>\n\t\t<string>{}</string>\n\t\t<string>--foreground</string>\n\t</array>\n",
        escape(&spec.program.display().to_string())
    ));
    text.push_str("\t<key>EnvironmentVariables</key>\n\t<dict>\n");
    for (name, value) in &spec.env {
        text.push_str(&env_entry(name, value));
    }
    text.push_str("\t</dict>\n");
    text.push_str(
        "\t<key>RunAtLoad</key>\n\t<true/>\n\
         \t<key>KeepAlive</key>\n\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n\t</dict>\n\
         \t<key>ProcessType</key>\n\t<string>Background</string>\n\
         </dict>\n\
         </plist>\n",
    );
    text
}

fn env_entry(name: &str, value: &str) -> String {
    format!(
        "\t\t<key>{}</key>\n\t\t<string>{}</string>\n",
        escape(name),
        escape(value)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn names_home(text: &str, home: &Path) -> bool {
    text.contains(&env_entry(HOME_ENV, &home.display().to_string()))
}

pub fn check_available() -> Result<(), ServiceError> {
    if cfg!(target_os = "macos") {
        run("launchctl", &["version"]).map(drop)
    } else {
        Err(ServiceError::Unavailable(
            "launchd runs on macOS only".to_owned(),
        ))
    }
}

pub fn load(file: &Path) -> Result<(), ServiceError> {
    run("launchctl", &["load", "-w", &file.display().to_string()]).map(drop)
}

pub fn unload(file: &Path) -> Result<(), ServiceError> {
    run("launchctl", &["unload", "-w", &file.display().to_string()]).map(drop)
}

pub fn start() -> Result<(), ServiceError> {
    run("launchctl", &["start", LABEL]).map(drop)
}

pub fn stop() -> Result<(), ServiceError> {
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
        assert!(plist.contains("<string>/Applications/A&amp;B/jjfsd</string>"));
        assert!(names_home(&plist, Path::new("/Users/me/<notes>")));
        assert!(!names_home(&plist, Path::new("/Users/me")));
    }
}
