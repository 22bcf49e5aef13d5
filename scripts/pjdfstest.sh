#!/usr/bin/env bash
# Run the pjdfstest POSIX suite (crates.io `pjdfstest`) twice: on a plain directory under /tmp
# (the same file system as the mount's backing workspace) and inside a fresh jjfs mount.
# Prints both summaries and every case that passes on the plain directory but fails on the mount,
# with its failure message; exits 1 if there is any such case.
#
# Usage (as root, from the repo root): scripts/pjdfstest.sh [PATH/TO/jjfs] [TEST_PATTERN...]
#   jjfs defaults to target/release/jjfs if present, else target/debug/jjfs; jjfsd must sit beside it.
#   JJFS_NO_PASSTHROUGH=1 tests userspace I/O instead of kernel passthrough.
#   Installs pjdfstest (cargo install --locked) and the `tests` user/group if missing.
#   A whole run takes about 5 s per directory. Logs are kept in the printed work directory.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -gt 0 && -x $1 && ! -d $1 ]]; then JJFS=$1; shift
elif [[ -x target/release/jjfs ]]; then JJFS=target/release/jjfs
else JJFS=target/debug/jjfs; fi
[[ -x $JJFS ]] || { echo "no jjfs binary at $JJFS (run cargo build)" >&2; exit 2; }
JJFS=$(realpath "$JJFS")

export PATH="$HOME/.cargo/bin:$PATH"
command -v pjdfstest >/dev/null || cargo install --locked pjdfstest
getent group tests >/dev/null || groupadd tests
getent passwd tests >/dev/null || useradd -g tests -M -d / -s /usr/sbin/nologin tests

WORK=$(mktemp -d /tmp/jjfs-pjdfstest.XXXXXX)
chmod 755 "$WORK"   # the suite switches to users nobody and tests, who must reach the test dirs
mkdir -m 755 "$WORK/plain"
source scripts/jjfs-env.sh
CLEANUP_PATHS=("$WORK/plain")

cat >"$WORK/pjdfstest.toml" <<'EOF'
[features]
posix_fallocate = {}
rename_ctime = {}
utime_now = {}
utimensat = {}
[settings]
naptime = 0.01
EOF

run() { # run DIR NAME [PATTERN...]: full log in $WORK/NAME.log
  local dir=$1 log=$WORK/$2.log; shift 2
  echo "== pjdfstest in $dir"
  (cd "$dir" && NO_COLOR=1 RUST_BACKTRACE=0 pjdfstest -c "$WORK/pjdfstest.toml" -p "$dir" \
    -s /dev/shm "$@") >"$log" 2>&1 || true
  grep '^Summary' "$log" || { tail -n 20 "$log"; exit 2; }
}
run "$WORK/plain" plain "$@"

"$JJFS" init >/dev/null
MNT=$("$JJFS" open default "$WORK/mnt")
IO=$("$JJFS" list --json | sed -n 's/.*"io_mode": "\(.*\)".*/\1/p')
run "$MNT" mount "$@"
"$JJFS" stop >/dev/null

status() { awk '/^[^ \t]/ && NF >= 2 && $1 ~ /::/ {print $1, $NF}' "$1" | sort; }
p=$(status "$WORK/plain.log" | awk '$2 == "ok" {print $1}')
m=$(status "$WORK/mount.log" | awk '$2 == "FAILED" {print $1}')
diffs=$(comm -12 <(echo "$p") <(echo "$m") | sed '/^$/d')
echo "plain: $(wc -l <<<"$p") of $(status "$WORK/plain.log" | wc -l) pass;" \
  "mount: $(status "$WORK/mount.log" | awk '$2 == "ok"' | wc -l) pass" \
  "($IO I/O)"
echo "logs: $WORK/plain.log $WORK/mount.log"
skipped=$(comm -12 <(echo "$p") <(status "$WORK/mount.log" | awk '$2 == "skipped" {print $1}'))
[[ -z $skipped ]] || echo "pass on the plain directory but skipped on the mount:" $skipped
[[ -z $diffs ]] && { echo "no case passes on the plain directory but fails on the mount"; exit 0; }
echo "== $(wc -l <<<"$diffs") case(s) pass on the plain directory but fail on the mount:"
for c in $diffs; do
  awk -v c="$c" '$1 == c && $NF == "FAILED" {on = 1; print c; next} on && /^[ \t]/ {print; next} {on = 0}' \
    "$WORK/mount.log"
done
exit 1
