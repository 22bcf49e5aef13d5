//! Desktop notices of new conflicts: a call of `org.freedesktop.Notifications.Notify` on the
//! session bus of the user who owns the mount, through zbus.
//!
//! Notices are best effort and never slow the engine: `DesktopNotices::new_conflicts` only
//! queues. A task batches what is queued per repo and owner, so a burst of conflicts is one
//! notice ("3 new conflicts in repo default: a.md, b.md, c.md"), and a repo gets at most one
//! notice per `interval`; conflicts that arrive meanwhile wait for the next one. When no bus
//! answers (no graphical session, no notification server) nothing happens: it is logged once
//! at debug level per bus, until that bus answers again.
//!
//! A daemon running as root reaches a user's bus at `/run/user/<uid>/bus`. The bus checks the
//! credentials of whoever connects (root is refused), so the socket is connected from a
//! short-lived thread that first takes on that user's uid and gid with raw syscalls, which on
//! Linux change only the calling thread's credentials (glibc's `setresuid` would change every
//! thread of the daemon). The connected socket is then handed to zbus, which authenticates as
//! that uid.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use zbus::address::transport::{Transport, UnixSocket};

const DESTINATION: &str = "org.freedesktop.Notifications";
const OBJECT: &str = "/org/freedesktop/Notifications";
const INTERFACE: &str = "org.freedesktop.Notifications";
const APP_NAME: &str = "jjfs";

/// How long the first conflict of a burst waits for the rest of it.
pub const DEFAULT_GATHER: Duration = Duration::from_secs(1);
/// At most one notice per repo in this time.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Connecting and calling the notification server, together, give up after this.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Paths named in one notice; the rest are counted.
const MAX_LISTED: usize = 8;
/// Queued reports beyond this are dropped (the notice is best effort).
const QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("bad bus address {address:?}: {source}")]
    Address {
        address: String,
        source: zbus::Error,
    },
    #[error("bus {address:?} is not a unix socket path, so it cannot be reached as uid {uid}")]
    NotUnixPath { address: String, uid: u32 },
    #[error("cannot connect to {}: {source}", .path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("bus {address:?}: {source}")]
    Bus {
        address: String,
        source: zbus::Error,
    },
    #[error("bus {address:?} did not answer within {} s", CALL_TIMEOUT.as_secs())]
    Timeout { address: String },
}

/// A user, as the credentials a bus connection is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// A session bus and, when it is another user's, who to connect as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BusTarget {
    /// A D-Bus address, e.g. `unix:path=/run/user/1000/bus`.
    pub address: String,
    /// Connect with these credentials (only a root daemon can); None: as this process.
    pub connect_as: Option<User>,
}

impl BusTarget {
    /// The session bus of the user `owner`, as this process can reach it: its own session
    /// (`DBUS_SESSION_BUS_ADDRESS`, else `/run/user/<uid>/bus`) when it runs as `owner`; the
    /// owner's `/run/user/<uid>/bus`, connected as the owner, when it runs as root; None
    /// otherwise (another user's bus is not ours to reach) or when `owner` has no account.
    pub fn for_owner(owner: u32) -> Option<Self> {
        let me = nix::unistd::geteuid().as_raw();
        let standard = format!("unix:path=/run/user/{owner}/bus");
        if me == owner {
            let address = std::env::var("DBUS_SESSION_BUS_ADDRESS")
                .ok()
                .filter(|a| !a.is_empty())
                .unwrap_or(standard);
            return Some(Self {
                address,
                connect_as: None,
            });
        }
        if me != 0 {
            return None;
        }
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(owner)).ok()??;
        Some(Self {
            address: standard,
            connect_as: Some(User {
                uid: owner,
                gid: user.gid.as_raw(),
            }),
        })
    }
}

/// Finds the bus of a mount owner (`BusTarget::for_owner` unless a test says otherwise).
pub type BusFinder = Arc<dyn Fn(u32) -> Option<BusTarget> + Send + Sync>;

/// How notices are sent.
#[derive(Clone)]
pub struct NoticeSettings {
    /// The `notify` global setting; `DesktopNotices::set_enabled` changes it later.
    pub enabled: bool,
    pub gather: Duration,
    pub interval: Duration,
    pub bus_for: BusFinder,
}

impl Default for NoticeSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            gather: DEFAULT_GATHER,
            interval: DEFAULT_INTERVAL,
            bus_for: Arc::new(BusTarget::for_owner),
        }
    }
}

/// The handle the engine reports new conflicts to. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DesktopNotices {
    tx: mpsc::Sender<Report>,
    enabled: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Report {
    repo: String,
    owner: u32,
    paths: Vec<String>,
}

impl DesktopNotices {
    /// Starts the notice task on the current tokio runtime (it ends when every handle is
    /// dropped).
    pub fn spawn(settings: NoticeSettings) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let enabled = Arc::new(AtomicBool::new(settings.enabled));
        tokio::spawn(run(rx, settings, enabled.clone()));
        Self { tx, enabled }
    }

    /// Turns notices on or off (the `notify` setting); conflicts queued while off are never
    /// told.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// `paths` (repo paths) of `repo` became conflicted; `owner` is the uid of the user who
    /// owns the mount where it is seen. Never blocks.
    pub fn new_conflicts(&self, repo: &str, owner: u32, paths: &[String]) {
        if paths.is_empty() || !self.is_enabled() {
            return;
        }
        let _ = self.tx.try_send(Report {
            repo: repo.to_owned(),
            owner,
            paths: paths.to_vec(),
        });
    }
}

/// Per repo and owner: which conflicts wait to be told, and when.
#[derive(Debug)]
pub struct Batcher {
    gather: Duration,
    interval: Duration,
    keys: HashMap<(String, u32), Batch>,
}

#[derive(Debug, Default)]
struct Batch {
    pending: BTreeSet<String>,
    due: Option<Instant>,
    last_sent: Option<Instant>,
}

/// One notice to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub repo: String,
    pub owner: u32,
    pub paths: Vec<String>,
}

impl Batcher {
    pub fn new(gather: Duration, interval: Duration) -> Self {
        Self {
            gather,
            interval,
            keys: HashMap::new(),
        }
    }

    /// Conflicts reported at `now`: due after the gather time, or once `interval` has passed
    /// since this repo's last notice, whichever is later.
    pub fn add(&mut self, repo: &str, owner: u32, paths: &[String], now: Instant) {
        let batch = self.keys.entry((repo.to_owned(), owner)).or_default();
        batch.pending.extend(paths.iter().cloned());
        if batch.due.is_none() {
            let mut due = now + self.gather;
            if let Some(last) = batch.last_sent {
                due = due.max(last + self.interval);
            }
            batch.due = Some(due);
        }
    }

    /// When the next notice is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.keys.values().filter_map(|b| b.due).min()
    }

    /// The notices due at `now`, each counted as sent at `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<Notice> {
        let mut out = Vec::new();
        for ((repo, owner), batch) in &mut self.keys {
            if batch.due.is_some_and(|due| due <= now) {
                batch.due = None;
                batch.last_sent = Some(now);
                out.push(Notice {
                    repo: repo.clone(),
                    owner: *owner,
                    paths: std::mem::take(&mut batch.pending).into_iter().collect(),
                });
            }
        }
        // Keys quiet for a whole interval need no memory of their last notice.
        self.keys
            .retain(|_, b| b.due.is_some() || b.last_sent.is_some_and(|t| now < t + self.interval));
        out.sort_by(|a, b| a.repo.cmp(&b.repo));
        out
    }
}

impl Notice {
    /// The notice's summary line and body (the body may carry markup: paths are escaped).
    pub fn text(&self) -> (String, String) {
        let n = self.paths.len();
        let summary = if n == 1 {
            format!("jjfs: new conflict in repo {}", self.repo)
        } else {
            format!("jjfs: {n} new conflicts in repo {}", self.repo)
        };
        let mut listed: Vec<String> = self
            .paths
            .iter()
            .take(MAX_LISTED)
            .map(|p| escape_markup(p))
            .collect();
        if n > MAX_LISTED {
            listed.push(format!("and {} more", n - MAX_LISTED));
        }
        let body = format!(
            "{}\nEdit the conflict markers away in any mount to resolve (`jjfs conflicts` lists them).",
            listed.join(", ")
        );
        (summary, body)
    }
}

/// Notification servers may read the body as a subset of HTML.
fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn run(mut rx: mpsc::Receiver<Report>, settings: NoticeSettings, enabled: Arc<AtomicBool>) {
    let mut batcher = Batcher::new(settings.gather, settings.interval);
    let mut unreachable: HashSet<BusTarget> = HashSet::new();
    loop {
        let due = batcher.next_due();
        tokio::select! {
            report = rx.recv() => match report {
                Some(r) => batcher.add(&r.repo, r.owner, &r.paths, Instant::now()),
                None => break,
            },
            _ = sleep_until(due), if due.is_some() => {
                for notice in batcher.take_due(Instant::now()) {
                    if !enabled.load(Ordering::Relaxed) {
                        continue;
                    }
                    let Some(target) = (settings.bus_for)(notice.owner) else {
                        continue;
                    };
                    match send(&target, &notice).await {
                        Ok(()) => {
                            unreachable.remove(&target);
                        }
                        Err(err) => {
                            if unreachable.insert(target) {
                                tracing::debug!("no desktop notice of conflicts: {err}");
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
    }
}

/// Sends one notice; returns the server's id for it.
async fn send(target: &BusTarget, notice: &Notice) -> Result<(), NoticeError> {
    let timeout = || NoticeError::Timeout {
        address: target.address.clone(),
    };
    tokio::time::timeout(CALL_TIMEOUT, async {
        let connection = connect(target).await?;
        let (summary, body) = notice.text();
        let mut hints: HashMap<&str, zbus::Variant<'_>> = HashMap::new();
        // 1: normal urgency.
        hints.insert("urgency", zbus::Variant::U8(1));
        connection
            .call_method(
                Some(DESTINATION),
                OBJECT,
                Some(INTERFACE),
                "Notify",
                &(
                    APP_NAME,
                    0u32,
                    "dialog-warning",
                    summary.as_str(),
                    body.as_str(),
                    Vec::<&str>::new(),
                    hints,
                    -1i32,
                ),
            )
            .await
            .map_err(|source| NoticeError::Bus {
                address: target.address.clone(),
                source,
            })?;
        Ok(())
    })
    .await
    .map_err(|_| timeout())?
}

/// A connection to `target`'s bus, authenticated as its user.
pub async fn connect(target: &BusTarget) -> Result<zbus::Connection, NoticeError> {
    let bus_error = |source| NoticeError::Bus {
        address: target.address.clone(),
        source,
    };
    let builder = match target.connect_as {
        None => zbus::connection::Builder::address(target.address.as_str()),
        Some(user) => {
            let socket = unix_socket(&target.address, user.uid)?;
            let stream = tokio::task::spawn_blocking(move || connect_as(user, &socket))
                .await
                .expect("the connecting thread does not panic")?;
            zbus::connection::Builder::unix_stream(stream).user_id(user.uid)
        }
    };
    builder.build().await.map_err(bus_error)
}

/// Where a socket in a unix-transport D-Bus address is.
#[derive(Debug, Clone)]
pub enum SocketName {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

fn unix_socket(address: &str, uid: u32) -> Result<SocketName, NoticeError> {
    let parsed: zbus::Address =
        address
            .parse()
            .map_err(|source: zbus::Error| NoticeError::Address {
                address: address.to_owned(),
                source,
            })?;
    let not_unix = || NoticeError::NotUnixPath {
        address: address.to_owned(),
        uid,
    };
    match parsed.transport() {
        Transport::Unix(unix) => match unix.path() {
            UnixSocket::File(path) => Ok(SocketName::Path(path.clone())),
            UnixSocket::Abstract(name) => {
                use std::os::unix::ffi::OsStrExt as _;
                Ok(SocketName::Abstract(name.as_bytes().to_vec()))
            }
            _ => Err(not_unix()),
        },
        _ => Err(not_unix()),
    }
}

/// Connects to `socket` with `user`'s credentials, from a thread of its own that ends right
/// after (its credentials cannot be given back). Needs root.
pub fn connect_as(user: User, socket: &SocketName) -> Result<UnixStream, NoticeError> {
    let socket = socket.clone();
    let shown = match &socket {
        SocketName::Path(p) => p.clone(),
        SocketName::Abstract(name) => PathBuf::from(format!("@{}", String::from_utf8_lossy(name))),
    };
    let connected = std::thread::Builder::new()
        .name("jjfs-bus-connect".to_owned())
        .spawn(move || -> io::Result<UnixStream> {
            become_user_this_thread(user)?;
            match &socket {
                SocketName::Path(path) => UnixStream::connect(path),
                SocketName::Abstract(name) => {
                    use std::os::linux::net::SocketAddrExt as _;
                    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                    UnixStream::connect_addr(&addr)
                }
            }
        })
        .and_then(|thread| {
            thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the connecting thread panicked")))
        });
    connected.map_err(|source| NoticeError::Connect {
        path: shown,
        source,
    })
}

/// Takes on `user`'s uid and gid, and no supplementary groups, for the calling thread only:
/// the raw syscalls act on one thread, where glibc's wrappers act on the whole process.
fn become_user_this_thread(user: User) -> io::Result<()> {
    let check = |ret: libc::c_long| {
        if ret == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: plain syscalls with integer arguments (and a null list for no groups); they
    // change only this thread's credentials.
    unsafe {
        check(libc::syscall(
            libc::SYS_setgroups,
            0 as libc::size_t,
            std::ptr::null::<libc::gid_t>(),
        ))?;
        check(libc::syscall(
            libc::SYS_setresgid,
            user.gid,
            user.gid,
            user.gid,
        ))?;
        check(libc::syscall(
            libc::SYS_setresuid,
            user.uid,
            user.uid,
            user.uid,
        ))?;
    }
    Ok(())
}

/// The path of a session bus socket in a `unix:path=` address, for messages.
pub fn socket_path(address: &str) -> Option<PathBuf> {
    match unix_socket(address, 0).ok()? {
        SocketName::Path(p) => Some(p),
        SocketName::Abstract(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_burst_is_one_notice_and_a_repo_waits_its_interval() {
        let gather = Duration::from_secs(1);
        let interval = Duration::from_secs(10);
        let mut b = Batcher::new(gather, interval);
        let t0 = Instant::now();
        b.add("default", 1000, &paths(&["b.md"]), t0);
        b.add(
            "default",
            1000,
            &paths(&["a.md", "c.md"]),
            t0 + Duration::from_millis(300),
        );
        b.add(
            "default",
            1000,
            &paths(&["a.md"]),
            t0 + Duration::from_millis(600),
        );
        assert_eq!(b.next_due(), Some(t0 + gather));
        assert!(b.take_due(t0 + Duration::from_millis(999)).is_empty());
        let sent = t0 + gather;
        assert_eq!(
            b.take_due(sent),
            vec![Notice {
                repo: "default".to_owned(),
                owner: 1000,
                paths: paths(&["a.md", "b.md", "c.md"]),
            }]
        );
        assert_eq!(b.next_due(), None);

        // During the interval: held until it ends, then told together.
        b.add(
            "default",
            1000,
            &paths(&["d.md"]),
            sent + Duration::from_secs(2),
        );
        b.add(
            "default",
            1000,
            &paths(&["e.md"]),
            sent + Duration::from_secs(5),
        );
        assert_eq!(b.next_due(), Some(sent + interval));
        assert!(b.take_due(sent + Duration::from_secs(9)).is_empty());
        let second = b.take_due(sent + interval);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].paths, paths(&["d.md", "e.md"]));

        // Another repo is not held by this one's interval.
        b.add("work", 1000, &paths(&["x.md"]), sent + interval);
        assert_eq!(b.next_due(), Some(sent + interval + gather));

        // Long after: a new burst only waits the gather time.
        let later = sent + Duration::from_secs(60);
        b.take_due(later);
        b.add("default", 1000, &paths(&["f.md"]), later);
        assert_eq!(b.next_due(), Some(later + gather));
    }

    #[test]
    fn the_text_names_the_repo_and_paths() {
        let notice = Notice {
            repo: "default".to_owned(),
            owner: 0,
            paths: paths(&["a.md", "b&<c>.md"]),
        };
        let (summary, body) = notice.text();
        assert_eq!(summary, "jjfs: 2 new conflicts in repo default");
        assert!(body.starts_with("a.md, b&amp;&lt;c&gt;.md\n"), "{body}");
        let many = Notice {
            paths: (0..12).map(|i| format!("{i}.md")).collect(),
            ..notice
        };
        let (summary, body) = many.text();
        assert_eq!(summary, "jjfs: 12 new conflicts in repo default");
        assert!(body.contains("7.md, and 4 more\n"), "{body}");
    }

    #[test]
    fn addresses() {
        assert_eq!(
            socket_path("unix:path=/run/user/1000/bus"),
            Some(PathBuf::from("/run/user/1000/bus"))
        );
        assert!(matches!(
            unix_socket("unix:abstract=/tmp/dbus-x,guid=0123456789abcdef0123456789abcdef", 5),
            Ok(SocketName::Abstract(name)) if name == b"/tmp/dbus-x"
        ));
        let err = unix_socket("tcp:host=127.0.0.1,port=1", 5).unwrap_err();
        assert!(err.to_string().contains("not a unix socket path"), "{err}");
    }
}
