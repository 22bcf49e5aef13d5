//! The inode table of one mount: which backing object each FUSE inode number stands for, the
//! names it was last seen under, the kernel's lookup counts, and the name changes made
//! through the mount (every unlink and rename of the backing namespace goes through here, so
//! the names stay true).
//!
//! A FUSE inode number is the backing object's own inode number (the backing root's swapped
//! with 1, which FUSE reserves for the root), so hard links, `ls -i` and readdir agree.
//!
//! No descriptor per inode: a kernel that looked up 20,000 files must not cost 20,000 fds.
//! Directories keep an `O_PATH` handle (their count is the tree's, and their children are
//! found through them, whatever renames happen above). Every other object is reached through
//! a process-wide LRU of `O_PATH` handles (`FdCache`), reopened on a miss from the directory
//! and name it was last seen under and checked to be the same object (device, inode number,
//! type and birth time). When the name no longer leads to it (renamed in the backing
//! directory behind the mount's back), its directory is searched for its inode number; when
//! that fails too, the answer is `ESTALE`. While a file is open, its handle stays pinned, so
//! an unlinked open file is still reachable.
//!
//! `name_to_handle_at`/`open_by_handle_at` would find moved objects anywhere, but need
//! `CAP_DAC_READ_SEARCH` (a non-root daemon has none) and not every file system exports
//! handles; one code path that works everywhere is preferred.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use fuser::{BackingId, Errno};

use super::sys::{self, Stat};

pub(crate) const ROOT: u64 = 1;

/// Names kept per inode (hard links seen through the mount).
const NAMES_PER_INODE: usize = 4;

/// A name in a directory, by the directory's FUSE inode.
pub(crate) type Name = (u64, OsString);

/// What makes a backing object itself: an inode number may be reused once its object is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
    kind: u32,
    btime: Option<(i64, u32)>,
}

impl Identity {
    pub(crate) fn of(st: &Stat) -> Self {
        Self {
            dev: st.dev(),
            ino: st.ino(),
            kind: st.kind(),
            btime: st.btime(),
        }
    }
}

/// One backing object the kernel knows about.
pub(crate) struct Inode {
    pub(crate) ino: u64,
    pub(crate) id: Identity,
    /// A directory's handle, held while the kernel knows it.
    dir: Option<Arc<OwnedFd>>,
    /// A file's handle, held while it is open (count of open handles, the handle).
    open: Mutex<(u32, Option<Arc<OwnedFd>>)>,
    /// Open handles that may write, from any client.
    pub(crate) writers: AtomicU32,
    /// Open writable handles of users (not of the daemon's own sync).
    pub(crate) user_writers: AtomicU32,
    /// The mount-wide change counter value at this inode's last change by a user.
    pub(crate) user_changed_at: AtomicU64,
    /// The one kernel passthrough backing shared by all open handles of this inode.
    pub(crate) backing: Mutex<Weak<BackingId>>,
}

impl Inode {
    fn new(ino: u64, id: Identity, dir: Option<OwnedFd>) -> Self {
        Self {
            ino,
            id,
            dir: dir.map(Arc::new),
            open: Mutex::new((0, None)),
            writers: AtomicU32::new(0),
            user_writers: AtomicU32::new(0),
            user_changed_at: AtomicU64::new(0),
            backing: Mutex::new(Weak::new()),
        }
    }

    /// Regular files and directories carry extended attributes; through `O_PATH` handles of
    /// other kinds the calls would act on the wrong object.
    pub(crate) fn has_xattrs(&self) -> bool {
        matches!(self.id.kind, libc::S_IFREG | libc::S_IFDIR)
    }

    fn open_handle(&self) -> Option<Arc<OwnedFd>> {
        lock(&self.open).1.clone()
    }
}

/// A bounded, process-wide cache of `O_PATH` handles of non-directories, shared by every
/// mount of the daemon (so the bound holds however many mounts there are).
pub(crate) struct FdCache {
    lru: Mutex<lru::LruCache<(u64, u64), Arc<OwnedFd>>>,
}

impl FdCache {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity.max(1)).expect("not zero");
        Self {
            lru: Mutex::new(lru::LruCache::new(capacity)),
        }
    }

    /// The daemon's cache: at most 1,024 handles, and a quarter of the fd limit at most.
    pub(crate) fn shared() -> Arc<Self> {
        static SHARED: LazyLock<Arc<FdCache>> = LazyLock::new(|| {
            let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map_or(1024, |(soft, _)| soft);
            Arc::new(FdCache::new((limit / 4).clamp(16, 1024) as usize))
        });
        SHARED.clone()
    }

    fn get(&self, key: (u64, u64)) -> Option<Arc<OwnedFd>> {
        lock(&self.lru).get(&key).cloned()
    }

    fn put(&self, key: (u64, u64), fd: Arc<OwnedFd>) {
        lock(&self.lru).put(key, fd);
    }

    fn remove(&self, key: (u64, u64)) {
        lock(&self.lru).pop(&key);
    }

    fn remove_mount(&self, mount: u64) {
        let mut lru = lock(&self.lru);
        let keys: Vec<(u64, u64)> = lru
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| k.0 == mount)
            .collect();
        for key in keys {
            lru.pop(&key);
        }
    }

    /// Handles held for mount `mount`.
    #[cfg(test)]
    fn count(&self, mount: u64) -> usize {
        lock(&self.lru).iter().filter(|(k, _)| k.0 == mount).count()
    }
}

struct Entry {
    inode: Arc<Inode>,
    /// Lookups the kernel holds (each entry reply adds one, forget subtracts).
    lookups: u64,
    /// Never forgotten (the root, and directories the kernel never sees).
    pinned: bool,
    /// Where it was last seen, most recent first.
    names: Vec<Name>,
}

#[derive(Default)]
struct Table {
    entries: HashMap<u64, Entry>,
    /// Which inode each known name leads to.
    by_name: HashMap<Name, u64>,
}

impl Table {
    /// Records that `name` leads to `ino` (an entry of the table).
    fn bind(&mut self, name: Name, ino: u64) {
        if let Some(other) = self.by_name.insert(name.clone(), ino)
            && other != ino
            && let Some(entry) = self.entries.get_mut(&other)
        {
            entry.names.retain(|n| n != &name);
        }
        let Some(entry) = self.entries.get_mut(&ino) else {
            return;
        };
        entry.names.retain(|n| n != &name);
        entry.names.insert(0, name);
        if entry.names.len() > NAMES_PER_INODE {
            for old in entry.names.split_off(NAMES_PER_INODE) {
                if self.by_name.get(&old) == Some(&ino) {
                    self.by_name.remove(&old);
                }
            }
        }
    }

    /// `name` no longer leads to anything known.
    fn unbind(&mut self, name: &Name) -> Option<u64> {
        let ino = self.by_name.remove(name)?;
        if let Some(entry) = self.entries.get_mut(&ino) {
            entry.names.retain(|n| n != name);
        }
        Some(ino)
    }

    fn remove(&mut self, ino: u64) -> Option<Entry> {
        let entry = self.entries.remove(&ino)?;
        for name in &entry.names {
            if self.by_name.get(name) == Some(&ino) {
                self.by_name.remove(name);
            }
        }
        Some(entry)
    }
}

pub(crate) struct InodeTable {
    /// This table's key in the fd cache.
    mount: u64,
    /// Backing inode number of the workspace root (served as FUSE inode 1).
    root_backing_ino: u64,
    table: Mutex<Table>,
    cache: Arc<FdCache>,
}

impl InodeTable {
    pub(crate) fn new(root_fd: OwnedFd, root: &Stat, cache: Arc<FdCache>) -> Self {
        static NEXT_MOUNT: AtomicU64 = AtomicU64::new(1);
        let table = Self {
            mount: NEXT_MOUNT.fetch_add(1, Ordering::Relaxed),
            root_backing_ino: root.ino(),
            table: Mutex::new(Table::default()),
            cache,
        };
        table.pin_dir(ROOT, root_fd, root);
        table
    }

    /// Adds a directory the kernel never forgets (the root, or one it never sees).
    pub(crate) fn pin_dir(&self, ino: u64, fd: OwnedFd, st: &Stat) -> Arc<Inode> {
        let inode = Arc::new(Inode::new(ino, Identity::of(st), Some(fd)));
        self.lock().entries.insert(
            ino,
            Entry {
                inode: inode.clone(),
                lookups: 1,
                pinned: true,
                names: Vec::new(),
            },
        );
        inode
    }

    /// The FUSE inode number of a backing inode number.
    pub(crate) fn fuse_ino(&self, backing_ino: u64) -> u64 {
        if backing_ino == self.root_backing_ino {
            ROOT
        } else if backing_ino == ROOT {
            self.root_backing_ino
        } else {
            backing_ino
        }
    }

    pub(crate) fn get(&self, ino: u64) -> Option<Arc<Inode>> {
        self.lock().entries.get(&ino).map(|e| e.inode.clone())
    }

    /// The inode `name` in `dir` leads to, if the kernel knows it and it is still there.
    pub(crate) fn at(&self, dir: &Inode, name: &OsStr) -> Option<Arc<Inode>> {
        let st = self.stat_at(dir, name).ok()?;
        let inode = self.get(self.fuse_ino(st.ino()))?;
        (inode.id == Identity::of(&st)).then_some(inode)
    }

    /// Looks `name` up in `dir` and records the lookup the reply hands to the kernel.
    pub(crate) fn lookup(&self, dir: &Inode, name: &OsStr) -> Result<(Arc<Inode>, Stat), Errno> {
        let dir_fd = self.fd(dir)?;
        let cname = sys::cname(name)?;
        let st = sys::stat_at(dir_fd.as_fd(), &cname)?;
        let key = (dir.ino, name.to_owned());
        if let Some(inode) = self.remember_known(&key, &st) {
            return Ok((inode, st));
        }
        let (st, handle) = if st.is_dir() {
            // A directory keeps a handle: open it and trust what the handle says.
            let fd = sys::open_path(dir_fd.as_fd(), &cname)?;
            let st = sys::stat_fd(fd.as_fd())?;
            (st, st.is_dir().then_some(fd))
        } else {
            (st, None)
        };
        Ok((self.remember(key, &st, handle), st))
    }

    /// Records the lookup of a file just made at `name` (`st` from its own fd, so no other
    /// object can have taken the name meanwhile).
    pub(crate) fn created(&self, name: Name, st: &Stat) -> Arc<Inode> {
        self.remember_known(&name, st)
            .unwrap_or_else(|| self.remember(name, st, None))
    }

    /// One more lookup of a known inode at `name`, if `st` is the object it stands for.
    fn remember_known(&self, name: &Name, st: &Stat) -> Option<Arc<Inode>> {
        let ino = self.fuse_ino(st.ino());
        let mut table = self.lock();
        let entry = table.entries.get_mut(&ino)?;
        if entry.inode.id != Identity::of(st) {
            return None;
        }
        entry.lookups += 1;
        let inode = entry.inode.clone();
        table.bind(name.clone(), ino);
        Some(inode)
    }

    /// Records one more kernel lookup of the object `st` found at `name`. An inode number
    /// known for another object (gone, since its number was reused) now stands for this one:
    /// the kernel holds one inode per number, so the lookups carry over.
    fn remember(&self, name: Name, st: &Stat, dir: Option<OwnedFd>) -> Arc<Inode> {
        let ino = self.fuse_ino(st.ino());
        let id = Identity::of(st);
        let mut table = self.lock();
        let lookups = match table.entries.get_mut(&ino) {
            Some(entry) if entry.inode.id == id => {
                entry.lookups += 1;
                let inode = entry.inode.clone();
                table.bind(name, ino);
                return inode;
            }
            Some(_) => {
                let old = table.remove(ino).expect("present");
                self.cache.remove((self.mount, ino));
                old.lookups
            }
            None => 0,
        };
        let inode = Arc::new(Inode::new(ino, id, dir));
        table.entries.insert(
            ino,
            Entry {
                inode: inode.clone(),
                lookups: lookups + 1,
                pinned: false,
                names: Vec::new(),
            },
        );
        table.bind(name, ino);
        inode
    }

    /// The kernel dropped `n` lookups of `ino`; the inode goes when none remain.
    pub(crate) fn forget(&self, ino: u64, n: u64) {
        let mut table = self.lock();
        let Some(entry) = table.entries.get_mut(&ino) else {
            return;
        };
        if entry.pinned {
            return;
        }
        entry.lookups = entry.lookups.saturating_sub(n);
        if entry.lookups == 0 {
            table.remove(ino);
            drop(table);
            self.cache.remove((self.mount, ino));
        }
    }

    /// A handle on the object `inode` stands for: see the module comment.
    pub(crate) fn fd(&self, inode: &Inode) -> Result<Arc<OwnedFd>, Errno> {
        if let Some(fd) = &inode.dir {
            return Ok(fd.clone());
        }
        if let Some(fd) = inode.open_handle() {
            return Ok(fd);
        }
        let key = (self.mount, inode.ino);
        if let Some(fd) = self.cache.get(key) {
            return Ok(fd);
        }
        let fd = Arc::new(self.find(inode)?);
        self.cache.put(key, fd.clone());
        Ok(fd)
    }

    /// Opens `inode`'s object again from the names it was seen under, or finds it by its
    /// inode number in their directories.
    fn find(&self, inode: &Inode) -> Result<OwnedFd, Errno> {
        let names = match self.lock().entries.get(&inode.ino) {
            Some(entry) if entry.inode.id == inode.id => entry.names.clone(),
            _ => Vec::new(),
        };
        let seen: Vec<(Arc<OwnedFd>, Name)> = names
            .into_iter()
            .filter_map(|name| Some((self.get(name.0)?.dir.clone()?, name)))
            .collect();
        for (dir, (_, name)) in &seen {
            if let Ok(cname) = sys::cname(name)
                && let Some(fd) = open_same(dir, &cname, &inode.id)
            {
                return Ok(fd);
            }
        }
        let mut searched = Vec::new();
        for (dir, (parent, _)) in seen {
            if searched.contains(&parent) {
                continue;
            }
            searched.push(parent);
            if let Ok(Some(cname)) = sys::find_ino(dir.as_fd(), inode.id.ino)
                && let Some(fd) = open_same(&dir, &cname, &inode.id)
            {
                let name = OsString::from_vec(cname.into_bytes());
                self.lock().bind((parent, name), inode.ino);
                return Ok(fd);
            }
        }
        Err(Errno::ESTALE)
    }

    /// `inode` was opened as `file`: its handle stays until the last open one is released.
    pub(crate) fn opened(&self, inode: &Inode, file: BorrowedFd<'_>) -> Result<(), Errno> {
        if inode.dir.is_some() {
            return Ok(());
        }
        let mut open = lock(&inode.open);
        if open.1.is_none() {
            let fd = match self.cache.get((self.mount, inode.ino)) {
                Some(fd) => fd,
                None => Arc::new(sys::reopen_path(file)?),
            };
            open.1 = Some(fd);
        }
        open.0 += 1;
        Ok(())
    }

    pub(crate) fn released(&self, inode: &Inode) {
        if inode.dir.is_some() {
            return;
        }
        let mut open = lock(&inode.open);
        open.0 = open.0.saturating_sub(1);
        if open.0 == 0 {
            open.1 = None;
        }
    }

    /// The attributes of `inode`'s object. Without a handle at hand, its last name is
    /// stat'ed and checked to be the object: `ls -l` of a huge folder opens nothing.
    pub(crate) fn stat(&self, inode: &Inode) -> Result<Stat, Errno> {
        let held = inode.dir.clone().or_else(|| inode.open_handle());
        if let Some(fd) = held.or_else(|| self.cache.get((self.mount, inode.ino))) {
            return Ok(sys::stat_fd(fd.as_fd())?);
        }
        let name = match self.lock().entries.get(&inode.ino) {
            Some(entry) if entry.inode.id == inode.id => entry.names.first().cloned(),
            _ => None,
        };
        if let Some((parent, name)) = name
            && let Some(dir) = self.get(parent)
            && let Ok(st) = self.stat_at(&dir, &name)
            && Identity::of(&st) == inode.id
        {
            return Ok(st);
        }
        Ok(sys::stat_fd(self.fd(inode)?.as_fd())?)
    }

    /// `name` in directory `dir`, not following a final symlink.
    pub(crate) fn stat_at(&self, dir: &Inode, name: &OsStr) -> Result<Stat, Errno> {
        let cname = sys::cname(name)?;
        Ok(sys::stat_at(self.fd(dir)?.as_fd(), &cname)?)
    }

    /// Removes `name` from `dir` (a directory when `rmdir`).
    pub(crate) fn unlink(&self, dir: &Inode, name: &OsStr, rmdir: bool) -> Result<(), Errno> {
        let cname = sys::cname(name)?;
        sys::unlinkat(self.fd(dir)?.as_fd(), &cname, rmdir)?;
        self.lock().unbind(&(dir.ino, name.to_owned()));
        Ok(())
    }

    /// Renames `name` in `from` to `new` in `to` (`flags` as renameat2 takes them).
    pub(crate) fn rename(
        &self,
        from: &Inode,
        name: &CStr,
        to: &Inode,
        new: &CStr,
        flags: u32,
    ) -> Result<(), Errno> {
        sys::renameat2(
            self.fd(from)?.as_fd(),
            name,
            self.fd(to)?.as_fd(),
            new,
            flags,
        )?;
        let old = (from.ino, OsStr::from_bytes(name.to_bytes()).to_owned());
        let new = (to.ino, OsStr::from_bytes(new.to_bytes()).to_owned());
        let mut table = self.lock();
        let moved = table.unbind(&old);
        let replaced = table.unbind(&new);
        if let Some(ino) = moved {
            table.bind(new, ino);
        }
        if flags & libc::RENAME_EXCHANGE != 0
            && let Some(ino) = replaced
        {
            table.bind(old, ino);
        }
        Ok(())
    }

    /// The workspace-relative path of `inode` (None if it has none any more).
    pub(crate) fn path_of(
        &self,
        inode: &Inode,
        root: &std::path::Path,
    ) -> Option<std::path::PathBuf> {
        let fd = self.fd(inode).ok()?;
        path_in(root, &fd)
    }

    /// The latest name of `ino`.
    pub(crate) fn name_of(&self, ino: u64) -> Option<Name> {
        self.lock().entries.get(&ino)?.names.first().cloned()
    }

    /// Everything the kernel may hold cached: every known inode and every name bound to
    /// one (a snapshot of the table; the pinned inodes the kernel never sees are left out,
    /// the root is in).
    pub(crate) fn known(&self) -> (Vec<u64>, Vec<Name>) {
        let table = self.lock();
        let seen = |ino: &u64| *ino == ROOT || table.entries.get(ino).is_some_and(|e| !e.pinned);
        let inodes = table.entries.keys().copied().filter(seen).collect();
        let names = table
            .by_name
            .keys()
            .filter(|(dir, _)| seen(dir))
            .cloned()
            .collect();
        (inodes, names)
    }

    /// Inodes with open writable handles of users.
    pub(crate) fn with_user_writers(&self) -> Vec<Arc<Inode>> {
        self.lock()
            .entries
            .values()
            .filter(|e| e.inode.user_writers.load(Ordering::Relaxed) > 0)
            .map(|e| e.inode.clone())
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        lock(&self.table)
    }
}

impl Drop for InodeTable {
    fn drop(&mut self) {
        self.cache.remove_mount(self.mount);
    }
}

/// The path of the object behind `fd` relative to `root` (None once deleted or outside).
pub(crate) fn path_in(root: &std::path::Path, fd: &OwnedFd) -> Option<std::path::PathBuf> {
    use std::os::fd::AsRawFd;
    let path = sys::fd_path(fd.as_raw_fd()).ok()?;
    if path.as_os_str().as_bytes().ends_with(b" (deleted)") {
        return None;
    }
    path.strip_prefix(root).ok().map(std::path::Path::to_owned)
}

/// An `O_PATH` handle on `name` in `dir` if it is still the object `id`.
fn open_same(dir: &OwnedFd, name: &CString, id: &Identity) -> Option<OwnedFd> {
    let fd = sys::open_path(dir.as_fd(), name).ok()?;
    let st = sys::stat_fd(fd.as_fd()).ok()?;
    (Identity::of(&st) == *id).then_some(fd)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn table(dir: &Path, capacity: usize) -> (InodeTable, Arc<FdCache>) {
        let fd: OwnedFd = std::fs::File::open(dir).unwrap().into();
        let st = sys::stat_fd(fd.as_fd()).unwrap();
        let cache = Arc::new(FdCache::new(capacity));
        (InodeTable::new(fd, &st, cache.clone()), cache)
    }

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn many_files_cost_a_bounded_number_of_handles() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..300 {
            std::fs::write(dir.path().join(format!("f{i}")), i.to_string()).unwrap();
        }
        let (inodes, cache) = table(dir.path(), 16);
        let root = inodes.get(ROOT).unwrap();
        let mut files = Vec::new();
        for i in 0..300 {
            let (inode, _) = inodes.lookup(&root, OsStr::new(&format!("f{i}"))).unwrap();
            files.push(inode);
        }
        // Every inode is reachable, the cache never grows past its bound.
        for (i, inode) in files.iter().enumerate() {
            let st = inodes.stat(inode).unwrap();
            assert_eq!(st.size(), i.to_string().len() as u64);
            assert!(cache.count(inodes.mount) <= 16);
        }
        assert!(open_fds() < 200, "{} fds open", open_fds());
        // Forgotten inodes leave the table and the cache.
        for inode in &files {
            inodes.forget(inode.ino, 1);
        }
        assert!(inodes.get(files[0].ino).is_none());
        assert_eq!(cache.count(inodes.mount), 0);
    }

    #[test]
    fn names_follow_renames_through_the_table_and_behind_its_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), "a").unwrap();
        std::fs::write(dir.path().join("sub/b"), "bb").unwrap();
        let (inodes, cache) = table(dir.path(), 16);
        let root = inodes.get(ROOT).unwrap();
        let (sub, _) = inodes.lookup(&root, OsStr::new("sub")).unwrap();
        let (a, _) = inodes.lookup(&sub, OsStr::new("a")).unwrap();
        let (b, _) = inodes.lookup(&sub, OsStr::new("b")).unwrap();

        // Through the table: the name moves with it.
        inodes.rename(&sub, c"a", &root, c"a2", 0).expect("rename");
        cache.remove_mount(inodes.mount);
        assert_eq!(inodes.name_of(a.ino), Some((ROOT, "a2".into())));
        assert_eq!(inodes.stat(&a).unwrap().size(), 1);

        // Behind its back: found again by its inode number in the directory it was in.
        std::fs::rename(dir.path().join("sub/b"), dir.path().join("sub/b-moved")).unwrap();
        cache.remove_mount(inodes.mount);
        assert_eq!(inodes.stat(&b).unwrap().size(), 2);
        assert_eq!(inodes.name_of(b.ino), Some((sub.ino, "b-moved".into())));

        // A directory renamed behind its back keeps working (its handle follows it).
        std::fs::rename(dir.path().join("sub"), dir.path().join("sub2")).unwrap();
        cache.remove_mount(inodes.mount);
        assert_eq!(inodes.stat(&b).unwrap().size(), 2);

        // Gone from everywhere it was seen: stale, never another object.
        std::fs::remove_file(dir.path().join("sub2/b-moved")).unwrap();
        std::fs::write(dir.path().join("sub2/b-moved"), "other").unwrap();
        cache.remove_mount(inodes.mount);
        assert_eq!(inodes.stat(&b).err(), Some(Errno::ESTALE));
    }

    #[test]
    fn an_open_file_stays_reachable_after_its_last_name_goes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "abc").unwrap();
        let (inodes, cache) = table(dir.path(), 16);
        let root = inodes.get(ROOT).unwrap();
        let (f, _) = inodes.lookup(&root, OsStr::new("f")).unwrap();
        let file = std::fs::File::open(dir.path().join("f")).unwrap();
        inodes.opened(&f, file.as_fd()).unwrap();
        drop(file);
        inodes.unlink(&root, OsStr::new("f"), false).unwrap();
        cache.remove_mount(inodes.mount);
        assert_eq!(inodes.stat(&f).unwrap().size(), 3);
        inodes.released(&f);
        assert_eq!(inodes.stat(&f).err(), Some(Errno::ESTALE));
    }

    #[test]
    fn a_reused_inode_number_stands_for_the_new_object_and_keeps_the_lookups() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "old").unwrap();
        // Another kind of object: file systems stamp birth times coarsely, so two files made
        // at once can share one.
        std::fs::create_dir(dir.path().join("g")).unwrap();
        let (inodes, _cache) = table(dir.path(), 16);
        let root = inodes.get(ROOT).unwrap();
        let (old, _) = inodes.lookup(&root, OsStr::new("f")).unwrap();
        // As if `f` went and `g` got its inode number (which a test cannot force).
        let g = sys::stat_at(inodes.fd(&root).unwrap().as_fd(), c"g").unwrap();
        let new = inodes.remember((ROOT, "g".into()), &g.with_ino(old.ino), None);
        assert!(!Arc::ptr_eq(&new, &old));
        assert!(Arc::ptr_eq(&inodes.get(old.ino).unwrap(), &new));
        assert_eq!(inodes.name_of(old.ino), Some((ROOT, "g".into())));
        // The kernel holds one inode per number: both lookups are forgotten on it.
        inodes.forget(old.ino, 1);
        assert!(inodes.get(old.ino).is_some());
        inodes.forget(old.ino, 1);
        assert!(inodes.get(old.ino).is_none());
    }
}
