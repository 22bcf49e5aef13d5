# Sourced by the conformance scripts: a jjfs state directory of its own under $WORK (set by
# the caller), and a cleanup on exit that stops the daemon and unmounts $WORK/mnt even when
# the run fails. Extra paths to remove go in CLEANUP_PATHS.
export JJFS_HOME=$WORK/home
unset JJFS_NO_AUTOSTART
CLEANUP_PATHS=()
cleanup() {
  "$JJFS" stop >/dev/null 2>&1 || true
  pid=$(cat "$JJFS_HOME/daemon.lock" 2>/dev/null) || pid=
  if [[ -n $pid ]] && grep -qs jjfsd "/proc/$pid/cmdline"; then kill "$pid" || true; fi
  if grep -q " $WORK/mnt fuse" /proc/mounts; then umount -l "$WORK/mnt" || true; fi
  rm -rf "${CLEANUP_PATHS[@]}" "$JJFS_HOME"
}
trap cleanup EXIT
