//! Desktop notices of conflicts, on a private session bus: a real `dbus-daemon` started by
//! the test and a notification server stand-in (zbus, in the test) that records each
//! `org.freedesktop.Notifications.Notify` call.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jjfs::desktop_notice::{self, BusTarget, DesktopNotices, NoticeSettings, User};
use tokio::sync::mpsc;

const NOBODY: User = User {
    uid: 65534,
    gid: 65534,
};

/// A `dbus-daemon` with a session bus policy listening on `DIR/bus`, killed on drop.
struct PrivateBus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    /// Started as `user` when given (the bus then refuses any other uid, root included).
    fn start(user: Option<User>) -> Self {
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
struct Call {
    app: String,
    summary: String,
    body: String,
    at: Instant,
}

/// Owns `org.freedesktop.Notifications` on the bus and records every `Notify`.
async fn notification_server(target: BusTarget) -> mpsc::UnboundedReceiver<Call> {
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

async fn next_call(calls: &mut mpsc::UnboundedReceiver<Call>) -> Call {
    tokio::time::timeout(Duration::from_secs(20), calls.recv())
        .await
        .expect("a Notify call within 20 s")
        .expect("the server runs")
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_conflicts_is_one_notice_naming_repo_and_paths() {
    let bus = PrivateBus::start(None);
    let target = BusTarget {
        address: bus.address.clone(),
        connect_as: None,
    };
    let mut calls = notification_server(target.clone()).await;
    let interval = Duration::from_secs(2);
    let finder_target = target.clone();
    let notices = DesktopNotices::spawn(NoticeSettings {
        enabled: true,
        gather: Duration::from_millis(300),
        interval,
        bus_for: Arc::new(move |owner| match owner {
            // An owner whose bus is not there: nothing is told, nothing breaks.
            4242 => Some(BusTarget {
                address: "unix:path=/nonexistent/bus".to_owned(),
                connect_as: None,
            }),
            _ => Some(finder_target.clone()),
        }),
    });

    notices.new_conflicts("default", 4242, &names(&["lost.md"]));
    notices.new_conflicts("default", 0, &names(&["b.md"]));
    notices.new_conflicts("default", 0, &names(&["a.md", "c.md"]));
    notices.new_conflicts("default", 0, &names(&["a.md"]));

    let first = next_call(&mut calls).await;
    assert_eq!(first.app, "jjfs");
    assert_eq!(first.summary, "jjfs: 3 new conflicts in repo default");
    assert!(
        first.body.starts_with("a.md, b.md, c.md\n"),
        "{}",
        first.body
    );

    // Within the interval: held, then told alone once it has passed.
    notices.new_conflicts("default", 0, &names(&["d.md"]));
    let second = next_call(&mut calls).await;
    assert_eq!(second.summary, "jjfs: new conflict in repo default");
    assert!(second.body.starts_with("d.md\n"), "{}", second.body);
    assert!(
        second.at - first.at >= interval - Duration::from_millis(100),
        "the second notice came {:?} after the first",
        second.at - first.at
    );

    // Off (the `notify` setting): what is reported meanwhile is never told.
    notices.set_enabled(false);
    notices.new_conflicts("default", 0, &names(&["off.md"]));
    notices.set_enabled(true);
    notices.new_conflicts("default", 0, &names(&["e.md"]));
    let third = next_call(&mut calls).await;
    assert!(third.body.starts_with("e.md\n"), "{}", third.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_daemon_notifies_on_the_mount_owners_bus() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    // The owner's bus, like /run/user/<uid>/bus, run by the owner.
    let bus = PrivateBus::start(Some(NOBODY));
    // Root itself is refused there: the notice has to connect as the owner.
    let as_root = BusTarget {
        address: bus.address.clone(),
        connect_as: None,
    };
    assert!(desktop_notice::connect(&as_root).await.is_err());
    let as_owner = BusTarget {
        address: bus.address.clone(),
        connect_as: Some(NOBODY),
    };
    let mut calls = notification_server(as_owner.clone()).await;

    let address = bus.address.clone();
    let notices = DesktopNotices::spawn(NoticeSettings {
        gather: Duration::from_millis(100),
        bus_for: Arc::new(move |owner| {
            Some(BusTarget {
                address: address.clone(),
                connect_as: Some(User {
                    uid: owner,
                    gid: owner,
                }),
            })
        }),
        ..NoticeSettings::default()
    });
    notices.new_conflicts("notes", NOBODY.uid, &names(&["plan.md"]));
    let call = next_call(&mut calls).await;
    assert_eq!(call.summary, "jjfs: new conflict in repo notes");
    assert!(call.body.starts_with("plan.md\n"), "{}", call.body);
    // This process kept its own credentials.
    assert!(nix::unistd::geteuid().is_root());
    assert!(nix::unistd::getegid().as_raw() == 0);
}
