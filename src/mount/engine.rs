//! The sync engine writing into a mount (an "update"): it runs as a client of the mount, from
//! one registered thread, so the kernel's caches and every file watcher in the mount see its
//! changes. This module owns the engine's side of every request (`Engine`, handed out by
//! `Updates::engine` to requests of that thread only) and the state of the update it runs
//! (`Updates`), and makes those writes safe for the mount's users:
//!
//! - A file is replaced whole. The engine's new file is written under a temporary name in the
//!   backing workspace's `.jj` and renamed over the old one once complete (when the engine
//!   sets its mode, after writing it), so a reader sees the old content or the new, never a
//!   part; an fd opened before keeps the old file. Until then the old file stays in place:
//!   the engine's unlink of a file it is about to replace is deferred.
//! - A user's write is never overwritten. Every change users make through the mount bumps a
//!   counter; the update knows the counter's value when the engine last looked at the
//!   mount's files (the fence). If the engine is about to replace or remove something a user
//!   changed after the fence, or holds open for writing, the update trips: the engine's
//!   operations fail with EBUSY, and the engine snapshots again and merges.
//! - What the engine creates belongs to the mount's owner when one is set (and the daemon is
//!   root): made under a temporary name, given to the owner, then put in place, so it never
//!   appears as root's.
//!
//! The engine's syscalls, in order, for a replaced file: unlink(name) (deferred),
//! openat(dir, name, O_CREAT|O_EXCL|O_WRONLY|O_NOFOLLOW, mode) (a temp file), write...,
//! fchmod(fd, mode) (complete: renamed over the name), close. A new file: the same without
//! the unlink. mkdir, symlink, unlink, rmdir and rename for the rest.
//!
//! Kernel invalidations are never sent while a lock is held that a FUSE handler may wait on
//! (the kernel may hold the directory lock the invalidation needs while that handler runs):
//! they are collected under the lock and sent after.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use fuser::{Errno, Notifier};

use super::inodes::{Inode, InodeTable, Name};
use super::sys::{self, Stat};

/// The directory, inside the backing workspace's `.jj`, that holds files being written.
pub(crate) const TEMP_DIR: &str = "jjfs-update";

#[derive(Default)]
struct State {
    active: bool,
    fence: u64,
    /// Workspace-relative paths whose files the update replaces (unlink, then create).
    replaced: HashSet<PathBuf>,
    /// Names the engine unlinked, still in place until their replacement is.
    deferred: HashSet<Name>,
    /// The engine's new files not yet in place, by the name they will take: their temp name.
    temps: HashMap<Name, CString>,
    /// Why the update had to stop.
    tripped: Option<String>,
}

/// The update the engine runs in one mount (at most one at a time).
pub(crate) struct Updates {
    /// The engine's thread while an update runs (0 when none does).
    writer: AtomicU32,
    state: Mutex<State>,
    /// The temp directory, an inode the kernel never sees.
    temp_dir: Arc<Inode>,
    next_temp: AtomicU64,
    /// Names users removed, with the change count at which they did.
    removed: Mutex<HashMap<Name, u64>>,
    /// Who owns what the engine creates (applied when the daemon is root).
    owner: Option<(u32, u32)>,
}

/// What a lookup by the engine finds for a name the update is changing.
enum View {
    /// The engine's new file, not yet in place.
    Temp(CString),
    /// The engine removed it (it stays in place for users until replaced).
    Removed,
    /// Nothing special: look in the directory.
    Normal,
}

impl Updates {
    /// Prepares the temp directory in the backing workspace (left-overs of a crash go).
    pub(crate) fn new(
        backing_root: &Path,
        inodes: &InodeTable,
        owner: Option<(u32, u32)>,
    ) -> std::io::Result<Self> {
        let dir = backing_root.join(".jj").join(TEMP_DIR);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let fd: OwnedFd = std::fs::File::open(&dir)?.into();
        let st = sys::stat_fd(fd.as_fd())?;
        let temp_dir = inodes.pin_dir(inodes.fuse_ino(st.ino()), fd, &st);
        Ok(Self {
            writer: AtomicU32::new(0),
            state: Mutex::new(State::default()),
            temp_dir,
            next_temp: AtomicU64::new(0),
            removed: Mutex::new(HashMap::new()),
            owner: owner.filter(|_| nix::unistd::geteuid().is_root()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The engine's side of a request from thread `tid`, if that is the engine's thread: the
    /// one place that tells the engine's requests from users'.
    pub(crate) fn engine<'a>(
        &'a self,
        tid: u32,
        inodes: &'a InodeTable,
        root: &'a Path,
        notifier: Option<&'a Notifier>,
    ) -> Option<Engine<'a>> {
        (tid != 0 && self.writer.load(Ordering::Acquire) == tid).then_some(Engine {
            updates: self,
            inodes,
            root,
            notifier,
        })
    }

    /// Starts an update from the calling thread.
    pub(crate) fn begin(&self, fence: u64, replaced: HashSet<PathBuf>) {
        let tid = nix::unistd::gettid().as_raw() as u32;
        *self.lock() = State {
            active: true,
            fence,
            replaced,
            ..State::default()
        };
        self.removed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, at| *at > fence);
        self.writer.store(tid, Ordering::Release);
    }

    /// Ends the update: files never completed are dropped, deferred removals happen, and the
    /// kernel forgets the names removed (after the lock is released). Err when the update
    /// tripped over a user's change.
    pub(crate) fn end(
        &self,
        inodes: &InodeTable,
        notifier: Option<&Notifier>,
    ) -> Result<(), String> {
        let mut state = self.lock();
        // Files never completed (the engine's probes for free names) are dropped.
        for (_, temp) in state.temps.drain() {
            let _ = self.unlink_temp(inodes, &temp);
        }
        // A name still deferred was unlinked to be replaced, and its replacement never went
        // in place (the write failed: a full disk, say): the old file stays where it was.
        // The kernel saw the unlink, so its cached entry is dropped and looked up again.
        let kept: Vec<Name> = state.deferred.drain().collect();
        state.active = false;
        let tripped = state.tripped.take();
        drop(state);
        self.writer.store(0, Ordering::Release);
        invalidate(notifier, &kept);
        match tripped {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// Users' view: names the update is changing are not to be cached by the kernel.
    pub(crate) fn is_in_flux(&self, parent: u64, name: &OsStr) -> bool {
        let state = self.lock();
        state.active && {
            let key = (parent, name.to_owned());
            state.deferred.contains(&key) || state.temps.contains_key(&key)
        }
    }

    /// A user removed `name` from `dir` at change count `at`.
    pub(crate) fn note_user_removal(&self, dir: u64, name: &OsStr, at: u64) {
        self.removed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((dir, name.to_owned()), at);
    }

    fn view(&self, parent: u64, name: &OsStr) -> View {
        let state = self.lock();
        let key = (parent, name.to_owned());
        if let Some(temp) = state.temps.get(&key) {
            View::Temp(temp.clone())
        } else if state.deferred.contains(&key) {
            View::Removed
        } else {
            View::Normal
        }
    }

    /// Refuses the engine's operations once the update has tripped.
    fn check_not_tripped(&self) -> Result<(), Errno> {
        if self.lock().tripped.is_some() {
            Err(Errno::EBUSY)
        } else {
            Ok(())
        }
    }

    /// Trips the update if a user changed `name` in `dir` (or holds it open for writing)
    /// since the fence.
    fn fence_check(&self, inodes: &InodeTable, dir: &Inode, name: &OsStr) -> Result<(), Errno> {
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
    fn fence_check_inode(&self, inode: &Inode) -> Result<(), Errno> {
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
        changed_since(&*inodes.at(dir, name)?, state.fence)
    }

    /// Whether the engine's unlink of `rel` must wait for its replacement.
    fn defers_unlink(&self, rel: Option<&Path>) -> bool {
        rel.is_some_and(|rel| self.lock().replaced.contains(rel))
    }

    /// Removes a deferred name now (before another object takes its place).
    fn undefer(&self, inodes: &InodeTable, dir: &Inode, name: &OsStr) -> Result<(), Errno> {
        let key = (dir.ino, name.to_owned());
        let mut state = self.lock();
        if state.deferred.contains(&key) {
            self.remove_now(&state, inodes, dir, name)?;
            state.deferred.remove(&key);
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
        match inodes.unlink(dir, name, false) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A fresh name in the temp directory.
    fn temp_name(&self) -> CString {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        CString::new(format!("{n}.tmp")).expect("no NUL")
    }

    fn unlink_temp(&self, inodes: &InodeTable, temp: &CStr) -> Result<(), Errno> {
        inodes.unlink(&self.temp_dir, OsStr::from_bytes(temp.to_bytes()), false)
    }

    /// Creates the engine's new file for `name` in `dir`, under a temporary name, owned by
    /// the mount's owner from the start.
    fn create_temp(
        &self,
        inodes: &InodeTable,
        name: Name,
        flags: i32,
        mode: u32,
    ) -> Result<(OwnedFd, CString), Errno> {
        let temp = self.temp_name();
        let dir = inodes.fd(&self.temp_dir)?;
        let fd = sys::openat(
            dir.as_fd(),
            &temp,
            (flags | libc::O_CREAT | libc::O_EXCL) & !libc::O_TRUNC,
            mode,
        )?;
        if let Some((uid, gid)) = self.owner
            && let Err(err) = sys::chown_fd(fd.as_fd(), Some(uid), Some(gid))
        {
            let _ = sys::unlinkat(dir.as_fd(), &temp, false);
            return Err(err.into());
        }
        self.lock().temps.insert(name, temp.clone());
        Ok((fd, temp))
    }

    /// Drops the engine's unfinished new file for `name` (it removed it again).
    fn discard(&self, inodes: &InodeTable, name: &Name) -> bool {
        let temp = self.lock().temps.remove(name);
        match temp {
            Some(temp) => {
                let _ = self.unlink_temp(inodes, &temp);
                true
            }
            None => false,
        }
    }

    /// The engine set the mode of its new file `temp`: it is complete (jj writes the
    /// content, then sets the mode), so it goes in place now, before the engine closes it and
    /// the kernel tells watchers it was written. Returns the name to invalidate.
    fn complete(&self, inodes: &InodeTable, temp: &CStr) -> Option<Name> {
        let mut state = self.lock();
        let name = state
            .temps
            .iter()
            .find(|(_, t)| t.as_c_str() == temp)
            .map(|(name, _)| name.clone())?;
        state.temps.remove(&name);
        match self.put_in_place(&mut state, inodes, &name, temp) {
            Ok(()) => Some(name),
            Err(why) => {
                let _ = self.unlink_temp(inodes, temp);
                state.tripped.get_or_insert(why);
                None
            }
        }
    }

    /// Renames a finished temp file over `name`, unless a user changed what is there.
    fn put_in_place(
        &self,
        state: &mut State,
        inodes: &InodeTable,
        name: &Name,
        temp: &CStr,
    ) -> Result<(), String> {
        let Some(dir) = inodes.get(name.0) else {
            return Err(format!(
                "the directory of {} is gone",
                name.1.to_string_lossy()
            ));
        };
        if let Some(why) = self.user_changed(state, inodes, &dir, &name.1) {
            return Err(why);
        }
        let target = sys::cname(&name.1).map_err(|e| e.to_string())?;
        inodes
            .rename(&self.temp_dir, temp, &dir, &target, 0)
            .map_err(|e| {
                format!(
                    "cannot put {} in place: {}",
                    name.1.to_string_lossy(),
                    std::io::Error::from_raw_os_error(e.code())
                )
            })?;
        state.deferred.remove(name);
        Ok(())
    }

    /// The temp name of `inode` if it is one of the engine's new files.
    fn temp_name_of(&self, inodes: &InodeTable, inode: &Inode) -> Option<CString> {
        let (parent, name) = inodes.name_of(inode.ino)?;
        (parent == self.temp_dir.ino)
            .then(|| CString::new(name.into_encoded_bytes()).ok())
            .flatten()
    }
}

/// The engine's side of its requests (see the module comment). Each method is what the
/// passthrough does for a user, guarded by the update.
pub(crate) struct Engine<'a> {
    updates: &'a Updates,
    inodes: &'a InodeTable,
    /// The backing workspace.
    root: &'a Path,
    notifier: Option<&'a Notifier>,
}

impl Engine<'_> {
    /// The engine's view of `name` in `dir` when the update is changing it (its new file not
    /// yet in place, or nothing for a name it removed); None: look in the directory.
    pub(crate) fn lookup(
        &self,
        dir: &Inode,
        name: &OsStr,
    ) -> Result<Option<(Arc<Inode>, Stat)>, Errno> {
        match self.updates.view(dir.ino, name) {
            View::Temp(temp) => {
                let temp = OsStr::from_bytes(temp.to_bytes());
                self.inodes.lookup(&self.updates.temp_dir, temp).map(Some)
            }
            View::Removed => Err(Errno::ENOENT),
            View::Normal => Ok(None),
        }
    }

    /// The engine's new file: created under a temporary name, put in place when complete. A
    /// name that exists (and is not being replaced) is refused as the kernel would.
    pub(crate) fn create(
        &self,
        dir: &Inode,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(Arc<Inode>, Stat, OwnedFd), Errno> {
        let updates = self.updates;
        updates.check_not_tripped()?;
        let replacing = matches!(updates.view(dir.ino, name), View::Removed);
        if !replacing && self.inodes.stat_at(dir, name).is_ok() {
            // Something is there: if a user put it there since the fence, stop.
            updates.fence_check(self.inodes, dir, name)?;
            return Err(Errno::EEXIST);
        }
        let key: Name = (dir.ino, name.to_owned());
        updates.discard(self.inodes, &key);
        let (file, temp) = updates.create_temp(self.inodes, key, flags, mode)?;
        let st = sys::stat_fd(file.as_fd())?;
        let temp = OsStr::from_bytes(temp.to_bytes()).to_owned();
        let inode = self.inodes.created((updates.temp_dir.ino, temp), &st);
        Ok((inode, st, file))
    }

    /// The engine removes `name`: a file it is about to replace stays until its replacement
    /// is in place; anything a user changed since the fence is refused.
    pub(crate) fn remove(&self, dir: &Inode, name: &OsStr, rmdir: bool) -> Result<(), Errno> {
        let updates = self.updates;
        updates.check_not_tripped()?;
        if !rmdir && updates.discard(self.inodes, &(dir.ino, name.to_owned())) {
            return Ok(());
        }
        updates.fence_check(self.inodes, dir, name)?;
        if !rmdir {
            let rel = self
                .inodes
                .path_of(dir, self.root)
                .map(|dir| dir.join(name));
            if updates.defers_unlink(rel.as_deref()) {
                updates.lock().deferred.insert((dir.ino, name.to_owned()));
                return Ok(());
            }
        }
        self.inodes.unlink(dir, name, rmdir)
    }

    /// mkdir, mknod and symlink by the engine: `make` creates `name` in a directory. With an
    /// owner, it is made under a temporary name, given to the owner, then put in place.
    pub(crate) fn make_node(
        &self,
        dir: &Inode,
        name: &OsStr,
        make: impl FnOnce(BorrowedFd<'_>, &CStr) -> std::io::Result<()>,
    ) -> Result<(), Errno> {
        let updates = self.updates;
        updates.check_not_tripped()?;
        updates.undefer(self.inodes, dir, name)?;
        let cname = sys::cname(name)?;
        let Some((uid, gid)) = updates.owner else {
            return Ok(make(self.inodes.fd(dir)?.as_fd(), &cname)?);
        };
        let temp_dir = self.inodes.fd(&updates.temp_dir)?;
        let temp = updates.temp_name();
        make(temp_dir.as_fd(), &temp)?;
        let placed = sys::lchown_at(temp_dir.as_fd(), &temp, uid, gid)
            .map_err(Errno::from)
            .and_then(|()| {
                self.inodes.rename(
                    &updates.temp_dir,
                    &temp,
                    dir,
                    &cname,
                    libc::RENAME_NOREPLACE,
                )
            });
        if placed.is_err() {
            let is_dir = sys::stat_at(temp_dir.as_fd(), &temp).is_ok_and(|st| st.is_dir());
            let _ = sys::unlinkat(temp_dir.as_fd(), &temp, is_dir);
        }
        placed
    }

    /// The engine renames: refused if a user changed either name since the fence.
    pub(crate) fn rename(
        &self,
        from: &Inode,
        name: &OsStr,
        to: &Inode,
        new: &OsStr,
        flags: u32,
    ) -> Result<(), Errno> {
        let updates = self.updates;
        updates.check_not_tripped()?;
        updates.fence_check(self.inodes, from, name)?;
        updates.fence_check(self.inodes, to, new)?;
        updates.undefer(self.inodes, to, new)?;
        let (old, new) = (sys::cname(name)?, sys::cname(new)?);
        self.inodes.rename(from, &old, to, &new, flags)
    }

    /// The engine changes attributes with `apply`; setting the mode of its new file
    /// completes it (see `Updates::complete`).
    pub(crate) fn setattr(
        &self,
        inode: &Inode,
        sets_mode: bool,
        apply: impl FnOnce() -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let updates = self.updates;
        updates.check_not_tripped()?;
        let temp = updates.temp_name_of(self.inodes, inode);
        if temp.is_none() {
            updates.fence_check_inode(inode)?;
        }
        apply()?;
        if let Some(temp) = temp
            && sets_mode
            && let Some(name) = updates.complete(self.inodes, &temp)
        {
            // A name the kernel looked up in the last few milliseconds stays cached, even
            // with no time to live: drop it, so the next open finds the new file.
            invalidate(self.notifier, &[name]);
        }
        Ok(())
    }
}

/// Tells the kernel to forget `names` (never call with a lock held: see the module comment).
fn invalidate(notifier: Option<&Notifier>, names: &[Name]) {
    let Some(notifier) = notifier else {
        return;
    };
    for (dir, name) in names {
        let _ = notifier.inval_entry(fuser::INodeNo(*dir), name);
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

#[cfg(test)]
mod tests {
    //! The engine's protocol on a plain directory, without a kernel: the calls its requests
    //! make, from the thread that began the update.

    use std::io::Write;

    use super::*;
    use crate::mount::inodes::{FdCache, ROOT};

    struct Workspace {
        dir: tempfile::TempDir,
        inodes: InodeTable,
        updates: Updates,
    }

    impl Workspace {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join(".jj")).unwrap();
            let fd: OwnedFd = std::fs::File::open(dir.path()).unwrap().into();
            let st = sys::stat_fd(fd.as_fd()).unwrap();
            let inodes = InodeTable::new(fd, &st, Arc::new(FdCache::new(8)));
            let updates = Updates::new(dir.path(), &inodes, None).unwrap();
            Self {
                dir,
                inodes,
                updates,
            }
        }

        fn engine(&self) -> Engine<'_> {
            let tid = nix::unistd::gettid().as_raw() as u32;
            self.updates
                .engine(tid, &self.inodes, self.dir.path(), None)
                .expect("this thread runs the update")
        }

        fn root(&self) -> Arc<Inode> {
            self.inodes.get(ROOT).unwrap()
        }

        fn read(&self, name: &str) -> String {
            std::fs::read_to_string(self.dir.path().join(name)).unwrap()
        }
    }

    #[test]
    fn only_the_updating_thread_is_the_engine() {
        let ws = Workspace::new();
        assert!(
            ws.updates
                .engine(1, &ws.inodes, ws.dir.path(), None)
                .is_none()
        );
        ws.updates.begin(0, HashSet::new());
        let _ = ws.engine();
        let other = std::thread::scope(|s| {
            s.spawn(|| {
                let tid = nix::unistd::gettid().as_raw() as u32;
                ws.updates
                    .engine(tid, &ws.inodes, ws.dir.path(), None)
                    .is_some()
            })
            .join()
            .unwrap()
        });
        assert!(!other);
        ws.updates.end(&ws.inodes, None).unwrap();
        assert!(
            ws.updates
                .engine(1, &ws.inodes, ws.dir.path(), None)
                .is_none()
        );
    }

    #[test]
    fn a_replaced_file_is_swapped_whole_when_its_mode_is_set() {
        let ws = Workspace::new();
        std::fs::write(ws.dir.path().join("a"), "old").unwrap();
        ws.updates.begin(0, HashSet::from([PathBuf::from("a")]));
        let (engine, root) = (ws.engine(), ws.root());
        engine.remove(&root, OsStr::new("a"), false).unwrap();
        assert_eq!(ws.read("a"), "old", "the unlink waits for the replacement");
        assert!(ws.updates.is_in_flux(ROOT, OsStr::new("a")));
        assert!(matches!(
            engine.lookup(&root, OsStr::new("a")),
            Err(Errno::ENOENT)
        ));
        let (inode, _, file) = engine
            .create(&root, OsStr::new("a"), 0o600, libc::O_WRONLY)
            .unwrap();
        std::fs::File::from(file).write_all(b"new").unwrap();
        assert_eq!(ws.read("a"), "old", "not in place before it is complete");
        // The engine's own lookup finds its new file.
        let (found, _) = engine.lookup(&root, OsStr::new("a")).unwrap().unwrap();
        assert_eq!(found.ino, inode.ino);
        let fd = ws.inodes.fd(&inode).unwrap();
        engine
            .setattr(&inode, true, || Ok(sys::chmod_fd(fd.as_fd(), 0o640)?))
            .unwrap();
        assert_eq!(ws.read("a"), "new");
        ws.updates.end(&ws.inodes, None).unwrap();
        assert!(!ws.updates.is_in_flux(ROOT, OsStr::new("a")));
        let meta = std::fs::metadata(ws.dir.path().join("a")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o640
        );
        assert_eq!(
            ws.inodes.name_of(inode.ino),
            Some((ROOT, "a".into())),
            "the new file's name followed it into place"
        );
    }

    #[test]
    fn an_unfinished_file_is_dropped_and_a_file_never_replaced_is_kept() {
        let ws = Workspace::new();
        std::fs::write(ws.dir.path().join("kept"), "x").unwrap();
        ws.updates.begin(0, HashSet::from([PathBuf::from("kept")]));
        let (engine, root) = (ws.engine(), ws.root());
        // Unlinked to be replaced, but the replacement never goes in place (a write that
        // failed): the old file stays.
        engine.remove(&root, OsStr::new("kept"), false).unwrap();
        engine
            .create(&root, OsStr::new("probe"), 0o600, libc::O_WRONLY)
            .unwrap();
        ws.updates.end(&ws.inodes, None).unwrap();
        assert_eq!(ws.read("kept"), "x");
        assert!(!ws.dir.path().join("probe").exists());
        let temps = ws.dir.path().join(".jj").join(TEMP_DIR);
        assert_eq!(std::fs::read_dir(temps).unwrap().count(), 0);
    }

    #[test]
    fn a_users_change_after_the_fence_trips_the_update() {
        let ws = Workspace::new();
        std::fs::write(ws.dir.path().join("a"), "user's").unwrap();
        let root = ws.root();
        let (a, _) = ws.inodes.lookup(&root, OsStr::new("a")).unwrap();
        a.user_changed_at.store(5, Ordering::Relaxed);
        ws.updates.begin(4, HashSet::from([PathBuf::from("a")]));
        let engine = ws.engine();
        assert_eq!(
            engine.remove(&root, OsStr::new("a"), false),
            Err(Errno::EBUSY)
        );
        // Tripped: everything else is refused too, and the end says why.
        assert_eq!(
            engine.make_node(&root, OsStr::new("d"), |dir, name| sys::mkdirat(
                dir, name, 0o755
            )),
            Err(Errno::EBUSY)
        );
        let why = ws.updates.end(&ws.inodes, None).unwrap_err();
        assert!(why.contains("a user changed it"), "{why}");
        assert_eq!(ws.read("a"), "user's");

        // A user's removal after the fence is kept too.
        ws.updates.note_user_removal(ROOT, OsStr::new("b"), 7);
        std::fs::write(ws.dir.path().join("b"), "engine's old copy").unwrap();
        ws.updates.begin(6, HashSet::new());
        assert_eq!(
            ws.engine().remove(&root, OsStr::new("b"), false),
            Err(Errno::EBUSY)
        );
        assert!(
            ws.updates
                .end(&ws.inodes, None)
                .unwrap_err()
                .contains("removed by a user")
        );
    }

    #[test]
    fn the_owner_gets_the_engines_new_directories_before_they_appear() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: chown needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".jj")).unwrap();
        let fd: OwnedFd = std::fs::File::open(dir.path()).unwrap().into();
        let st = sys::stat_fd(fd.as_fd()).unwrap();
        let inodes = InodeTable::new(fd, &st, Arc::new(FdCache::new(8)));
        let updates = Updates::new(dir.path(), &inodes, Some((4242, 4343))).unwrap();
        updates.begin(0, HashSet::new());
        let tid = nix::unistd::gettid().as_raw() as u32;
        let engine = updates.engine(tid, &inodes, dir.path(), None).unwrap();
        let root = inodes.get(ROOT).unwrap();
        engine
            .make_node(&root, OsStr::new("d"), |dir, name| {
                sys::mkdirat(dir, name, 0o755)
            })
            .unwrap();
        std::fs::create_dir(dir.path().join("taken")).unwrap();
        assert_eq!(
            engine.make_node(&root, OsStr::new("taken"), |dir, name| sys::mkdirat(
                dir, name, 0o755
            )),
            Err(Errno::EEXIST)
        );
        updates.end(&inodes, None).unwrap();
        let meta = std::fs::metadata(dir.path().join("d")).unwrap();
        assert_eq!(
            (
                std::os::unix::fs::MetadataExt::uid(&meta),
                std::os::unix::fs::MetadataExt::gid(&meta)
            ),
            (4242, 4343)
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join(".jj").join(TEMP_DIR))
                .unwrap()
                .count(),
            0,
            "the refused one left nothing behind"
        );
    }
}
