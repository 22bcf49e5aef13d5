//! Desktop notices of conflicts, on a private session bus: a real `dbus-daemon` started by
//! the test and a notification server stand-in (zbus, in the test) that records each
//! `org.freedesktop.Notifications.Notify` call.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::bus::{NOBODY, PrivateBus, next_call, notification_server};
use jjfs::desktop_notice::{self, BusTarget, DesktopNotices, NoticeSettings, User};

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
