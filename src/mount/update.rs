//! The sync engine writing into a mount (an "update"): it runs as a client of the mount, from
//! one registered thread, so the kernel's caches and every file watcher in the mount see its
//! changes. This module makes those writes safe for the mount's users:
//!
//! - A file is replaced whole. The engine's new file is written under a temporary name in the
//!   backing workspace's `.jj` and renamed over the old one when the engine closes it, so a
//!   reader sees the old content or the new, never a part; an fd opened before keeps the old
//!   file. Until then the old file stays in place: the engine's unlink of a file it is about
//!   to replace is deferred.
//! - A user's write is never overwritten. Every change users make through the mount bumps a
//!   counter; the update knows the counter's value when the engine last looked at the
//!   mount's files (the fence). If the engine is about to replace or remove something a user
//!   changed after the fence, or holds open for writing, the update trips: the engine's
//!   operations fail with EBUSY, and the engine snapshots again and merges.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use fuser::Errno;

use super::inodes::{Inode, InodeTable};
use super::sys;

/// The directory, inside the backing workspace's `.jj`, that holds files being written.
pub const TEMP_DIR: &str = "jjfs-update";

/// A name in a directory, by the directory's FUSE inode.
pub type Name = (u64, OsString);

/// A file the engine is writing, not yet in place.
struct Temp {
    name: CString,
}

#[derive(Default)]
struct State {
    active: bool,
    fence: u64,
    /// Workspace-relative paths whose files the update replaces (unlink, then create).
    replaced: HashSet<PathBuf>,
    /// Names the engine unlinked, still in place until their replacement is.
    deferred: HashSet<Name>,
    temps: HashMap<Name, Temp>,
    /// Why the update had to stop.
    tripped: Option<String>,
}

pub struct Updates {
    /// The engine's thread while an update runs (0 when none does).
    writer: AtomicU32,
    state: Mutex<State>,
    temp_dir: OwnedFd,
    next_temp: AtomicU64,
    /// Names users removed, with the change count at which they did.
    removed: Mutex<HashMap<Name, u64>>,
}

/// What a lookup by the engine finds for a name the update is changing.
pub enum OwnView {
    /// The engine's new file, not yet in place.
    Temp(CString),
    /// The engine removed it (it stays in place for users until replaced).
    Removed,
    /// Nothing special: look in the directory.
    Normal,
}

impl Updates {
    /// Prepares the temp directory in the backing workspace (left-overs of a crash go).
    pub fn new(backing_root: &std::path::Path) -> std::io::Result<Self> {
        let dir = backing_root.join(".jj").join(TEMP_DIR);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let temp_dir = std::fs::File::open(&dir)?.into();
        Ok(Self {
            writer: AtomicU32::new(0),
            state: Mutex::new(State::default()),
            temp_dir,
            next_temp: AtomicU64::new(0),
            removed: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a request comes from the engine's update thread.
    pub fn is_own(&self, tid: u32) -> bool {
        tid != 0 && self.writer.load(Ordering::Acquire) == tid
    }

    /// Starts an update from the calling thread.
    pub fn begin(&self, fence: u64, replaced: HashSet<PathBuf>) {
        let tid = nix::unistd::gettid().as_raw() as u32;
        {
            let mut state = self.lock();
            *state = State {
                active: true,
                fence,
                replaced,
                ..State::default()
            };
        }
        self.removed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, at| *at > fence);
        self.writer.store(tid, Ordering::Release);
    }

    /// Ends the update: files still pending go in place (or are dropped if never finished),
    /// deferred removals happen. Err when the update tripped over a user's change.
    pub fn end(
        &self,
        inodes: &InodeTable,
        notifier: Option<&fuser::Notifier>,
    ) -> Result<(), String> {
        let mut state = self.lock();
        let temps: Vec<(Name, Temp)> = state.temps.drain().collect();
        // Files never completed (the engine's probes for free names) are dropped.
        for (_, temp) in temps {
            let _ = sys::unlinkat(self.temp_dir.as_fd(), &temp.name, false);
        }
        let deferred: Vec<Name> = state.deferred.drain().collect();
        for name in deferred {
            if state.tripped.is_some() {
                break;
            }
            if let Some(dir) = inodes.get(name.0)
                && self.remove_now(&state, inodes, &dir, &name.1).is_ok()
                && let Some(notifier) = notifier
            {
                let _ = notifier.inval_entry(fuser::INodeNo(name.0), &name.1);
            }
        }
        state.active = false;
        let tripped = state.tripped.take();
        drop(state);
        self.writer.store(0, Ordering::Release);
        match tripped {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// Users' view: names the update is changing are not to be cached by the kernel.
    pub fn is_in_flux(&self, parent: u64, name: &OsStr) -> bool {
        let state = self.lock();
        state.active && {
            let key = (parent, name.to_owned());
            state.deferred.contains(&key) || state.temps.contains_key(&key)
        }
    }

    /// The engine's view of a name it is changing.
    pub fn own_view(&self, parent: u64, name: &OsStr) -> OwnView {
        let state = self.lock();
        let key = (parent, name.to_owned());
        if let Some(temp) = state.temps.get(&key) {
            OwnView::Temp(temp.name.clone())
        } else if state.deferred.contains(&key) {
            OwnView::Removed
        } else {
            OwnView::Normal
        }
    }

    pub fn temp_dir(&self) -> BorrowedFd<'_> {
        self.temp_dir.as_fd()
    }

    /// A user removed `name` from `dir` at change count `at`.
    pub fn note_user_removal(&self, dir: u64, name: &OsStr, at: u64) {
        self.removed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((dir, name.to_owned()), at);
    }

    /// Refuses the engine's operations once the update has tripped.
    pub fn check_not_tripped(&self) -> Result<(), Errno> {
        if self.lock().tripped.is_some() {
            Err(Errno::EBUSY)
        } else {
            Ok(())
        }
    }

    /// Trips the update if a user changed `name` in `dir` (or holds it open for writing)
    /// since the fence.
    pub fn fence_check(&self, inodes: &InodeTable, dir: &Inode, name: &OsStr) -> Result<(), Errno> {
        let mut state = self.lock();
        match self.user_changed(&state, inodes, dir, name) {
            Some(why) => {
                state.tripped.get_or_insert(why);
                Err(Errno::EBUSY)
            }
            None => Ok(()),
        }
    }

    /// Trips the update if a user changed the object `inode` since the fence.
    pub fn fence_check_inode(&self, inode: &Inode) -> Result<(), Errno> {
        let mut state = self.lock();
        if let Some(why) = changed_since(inode, state.fence) {
            state.tripped.get_or_insert(why);
            return Err(Errno::EBUSY);
        }
        Ok(())
    }

    fn user_changed(
        &self,
        state: &State,
        inodes: &InodeTable,
        dir: &Inode,
        name: &OsStr,
    ) -> Option<String> {
        let key = (dir.ino, name.to_owned());
        if let Some(at) = self
            .removed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && *at > state.fence
        {
            return Some(format!("{} was removed by a user", name.to_string_lossy()));
        }
        let cname = sys::cname(name).ok()?;
        let st = sys::statat(dir.fd(), &cname).ok()?;
        let inode = inodes.get(inodes.fuse_ino(st.st_ino))?;
        changed_since(&inode, state.fence)
    }

    /// Whether the engine's unlink of `name` must wait for its replacement.
    pub fn defers_unlink(&self, rel: Option<&std::path::Path>) -> bool {
        rel.is_some_and(|rel| self.lock().replaced.contains(rel))
    }

    pub fn defer_unlink(&self, dir: u64, name: &OsStr) {
        self.lock().deferred.insert((dir, name.to_owned()));
    }

    /// Removes a deferred name now (before another object takes its place).
    pub fn undefer(&self, inodes: &InodeTable, dir: &Inode, name: &OsStr) -> Result<(), Errno> {
        let state = self.lock();
        if state.deferred.contains(&(dir.ino, name.to_owned())) {
            self.remove_now(&state, inodes, dir, name)?;
            drop(state);
            self.lock().deferred.remove(&(dir.ino, name.to_owned()));
        }
        Ok(())
    }

    fn remove_now(
        &self,
        state: &State,
        inodes: &InodeTable,
        dir: &Inode,
        name: &OsStr,
    ) -> Result<(), Errno> {
        if let Some(why) = self.user_changed(state, inodes, dir, name) {
            tracing::debug!("kept {}: {why}", name.to_string_lossy());
            return Err(Errno::EBUSY);
        }
        let cname = sys::cname(name).map_err(Errno::from)?;
        match sys::unlinkat(dir.fd(), &cname, false) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(Errno::from(e)),
        }
    }

    /// Creates the engine's new file for `name` in `dir`, under a temporary name.
    pub fn create_temp(
        &self,
        dir: u64,
        name: &OsStr,
        flags: i32,
        mode: u32,
    ) -> Result<(OwnedFd, CString), Errno> {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let temp = CString::new(format!("{n}.tmp")).expect("no NUL");
        let fd = sys::openat(
            self.temp_dir.as_fd(),
            &temp,
            (flags | libc::O_CREAT | libc::O_EXCL) & !libc::O_TRUNC,
            mode,
        )
        .map_err(Errno::from)?;
        self.lock()
            .temps
            .insert((dir, name.to_owned()), Temp { name: temp.clone() });
        Ok((fd, temp))
    }

    /// The engine set the mode of its new file (by its temp name): the file is complete
    /// (jj writes the content, then sets the mode), so it goes in place now, before the
    /// engine closes it and the kernel tells watchers it was written.
    pub fn complete(
        &self,
        inodes: &InodeTable,
        notifier: Option<&fuser::Notifier>,
        temp: &CString,
    ) {
        let mut state = self.lock();
        let Some(name) = state
            .temps
            .iter()
            .find(|(_, t)| &t.name == temp)
            .map(|(name, _)| name.clone())
        else {
            return;
        };
        let temp = state.temps.remove(&name).expect("present");
        match self.put_in_place(&mut state, inodes, &name, &temp) {
            Ok(()) => {
                drop(state);
                // A name the kernel looked up in the last few milliseconds stays cached, even
                // with no time to live: drop it, so the next open finds the new file. (Safe in
                // a handler: the requester holds no lock on the directory.)
                if let Some(notifier) = notifier {
                    let _ = notifier.inval_entry(fuser::INodeNo(name.0), &name.1);
                }
            }
            Err(why) => {
                let _ = sys::unlinkat(self.temp_dir.as_fd(), &temp.name, false);
                state.tripped.get_or_insert(why);
            }
        }
    }

    /// Drops the engine's unfinished new file for `name` (it removed it again).
    pub fn discard(&self, name: &Name) -> bool {
        let mut state = self.lock();
        match state.temps.remove(name) {
            Some(temp) => {
                let _ = sys::unlinkat(self.temp_dir.as_fd(), &temp.name, false);
                true
            }
            None => false,
        }
    }

    /// The temp name of the engine's new file for `name`, if there is one.
    pub fn temp_of(&self, name: &Name) -> Option<CString> {
        self.lock().temps.get(name).map(|t| t.name.clone())
    }

    /// Renames a finished temp file over `name`, unless a user changed what is there.
    fn put_in_place(
        &self,
        state: &mut State,
        inodes: &InodeTable,
        name: &Name,
        temp: &Temp,
    ) -> Result<(), String> {
        let Some(dir) = inodes.get(name.0) else {
            return Err(format!(
                "the directory of {} is gone",
                name.1.to_string_lossy()
            ));
        };
        if let Some(why) = self.user_changed(state, inodes, &dir, &name.1) {
            let _ = sys::unlinkat(self.temp_dir.as_fd(), &temp.name, false);
            return Err(why);
        }
        let target = sys::cname(&name.1).map_err(|e| e.to_string())?;
        sys::renameat2(self.temp_dir.as_fd(), &temp.name, dir.fd(), &target, 0)
            .map_err(|e| format!("cannot put {} in place: {e}", name.1.to_string_lossy()))?;
        state.deferred.remove(name);
        Ok(())
    }
}

/// Why `inode` counts as changed by a user since change count `fence`, if it does.
fn changed_since(inode: &Inode, fence: u64) -> Option<String> {
    if inode.user_writers.load(Ordering::Relaxed) > 0 {
        return Some("a user has it open for writing".into());
    }
    if inode.user_changed_at.load(Ordering::Relaxed) > fence {
        return Some("a user changed it meanwhile".into());
    }
    None
}
