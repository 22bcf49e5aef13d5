//! A private session bus for tests: a real `dbus-daemon` and a notification server
//! stand-in (zbus) that records each `org.freedesktop.Notifications.Notify` call.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jjfs::desktop_notice::{self, BusTarget, User};
use tokio::sync::mpsc;

pub const NOBODY: User = User {
    uid: 65534,
    gid: 65534,
};

/// A `dbus-daemon` with a session bus policy listening on `DIR/bus`, killed on drop.
pub struct PrivateBus {
    child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    /// Started as `user` when given (the bus then refuses any other uid, root included).
    pub fn start(user: Option<User>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("jjfs-bus-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let mut cmd = match user {
            None => Command::new("dbus-daemon"),
            Some(u) => {
                std::os::unix::fs::chown(dir.path(), Some(u.uid), Some(u.gid)).unwrap();
                let mut cmd = Command::new("setpriv");
                cmd.arg(format!("--reuid={}", u.uid))
                    .arg(format!("--regid={}", u.gid))
                    .arg("--clear-groups")
                    .arg("dbus-daemon");
                cmd
            }
        };
        let mut child = cmd
            .arg(format!("--config-file={}", config.display()))
            .args(["--print-address", "--nofork"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon runs (package dbus-daemon)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("unix:path="), "dbus-daemon said {line:?}");
        Self {
            child,
            address: line.trim().to_owned(),
            _dir: dir,
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One recorded `Notify` call.
#[derive(Debug)]
pub struct Call {
    pub app: String,
    pub summary: String,
    pub body: String,
    pub at: Instant,
}

/// Owns `org.freedesktop.Notifications` on the bus and records every `Notify`.
pub async fn notification_server(target: BusTarget) -> mpsc::UnboundedReceiver<Call> {
    let conn = desktop_notice::connect(&target).await.unwrap();
    conn.request_name("org.freedesktop.Notifications")
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = zbus::MessageStream::from(&conn);
        let mut id = 0u32;
        while let Some(Ok(msg)) = stream.next().await {
            let header = msg.header();
            if header.message_type() != zbus::message::Type::MethodCall
                || header.member().map(|m| m.as_str()) != Some("Notify")
            {
                continue;
            }
            type Args = (
                String,
                u32,
                String,
                String,
                String,
                Vec<String>,
                HashMap<String, zbus::OwnedVariant>,
                i32,
            );
            let (app, _, _, summary, body, _, _, _): Args = msg.body().deserialize().unwrap();
            id += 1;
            conn.reply(&header, &id).await.unwrap();
            let _ = tx.send(Call {
                app,
                summary,
                body,
                at: Instant::now(),
            });
        }
    });
    rx
}

pub async fn next_call(calls: &mut mpsc::UnboundedReceiver<Call>) -> Call {
    tokio::time::timeout(Duration::from_secs(20), calls.recv())
        .await
        .expect("a Notify call within 20 s")
        .expect("the server runs")
}

/// The next recorded call within `limit`, or None.
pub async fn call_within(
    calls: &mut mpsc::UnboundedReceiver<Call>,
    limit: Duration,
) -> Option<Call> {
    tokio::time::timeout(limit, calls.recv())
        .await
        .ok()
        .flatten()
}
