#!/usr/bin/env bash
# Run the fsx file system exerciser (crates.io `fsx`) on one file inside a fresh jjfs mount:
# random pread/pwrite, mmap reads and writes, truncate, fallocate, hole punching, sendfile,
# copy_file_range, fsync and close/reopen, each read checked against the expected data.
# Exits non-zero if fsx reports a mismatch or an error.
#
# Usage (as root, from the repo root): scripts/fsx.sh [PATH/TO/jjfs]
#   jjfs defaults to target/release/jjfs if present, else target/debug/jjfs; jjfsd must sit beside it.
#   FSX_OPS (default 100000) operations with seed FSX_SEED (default 1).
#   JJFS_NO_PASSTHROUGH=1 tests userspace I/O instead of kernel passthrough.
#   Installs fsx (cargo install --locked) if missing. On failure fsx's logs stay in the work dir.
#   100,000 ops take 1.5 to 4 minutes here (fsync-bound; plain ext4 takes 1 to 2).
set -euo pipefail
cd "$(dirname "$0")/.."

JJFS=${1:-$([[ -x target/release/jjfs ]] && echo target/release/jjfs || echo target/debug/jjfs)}
[[ -x $JJFS ]] || { echo "no jjfs binary at $JJFS (run cargo build)" >&2; exit 2; }
JJFS=$(realpath "$JJFS")
export PATH="$HOME/.cargo/bin:$PATH"
command -v fsx >/dev/null || cargo install --locked fsx

WORK=$(mktemp -d /tmp/jjfs-fsx.XXXXXX)
source scripts/jjfs-env.sh

cat >"$WORK/fsx.toml" <<'EOF'
flen = 1048576
[weights]
close_open = 1
read = 10
write = 10
mapread = 10
mapwrite = 10
invalidate = 1
truncate = 2
fsync = 1
fdatasync = 1
posix_fallocate = 1
punch_hole = 1
sendfile = 1
posix_fadvise = 1
copy_file_range = 1
EOF

"$JJFS" init >/dev/null
# fsx's file stays local (ignored): the point is the mount's I/O, not thousands of commits.
"$JJFS" config ignore "fsx/"
MNT=$("$JJFS" open default "$WORK/mnt")
mkdir "$MNT/fsx"
IO=$("$JJFS" list --json | sed -n 's/.*"io_mode": "\(.*\)".*/\1/p')
echo "fsx: ${FSX_OPS:-100000} ops, seed ${FSX_SEED:-1}, $MNT/fsx/fsx.data ($IO I/O)"
start=$SECONDS
rc=0
fsx -f "$WORK/fsx.toml" -N "${FSX_OPS:-100000}" -S "${FSX_SEED:-1}" -P "$WORK" "$MNT/fsx/fsx.data" || rc=$?
echo "fsx exit $rc after $((SECONDS - start)) s"
"$JJFS" stop >/dev/null
[[ $rc == 0 ]] && rm -rf "$WORK" || echo "fsx artifacts: $WORK"
exit "$rc"
