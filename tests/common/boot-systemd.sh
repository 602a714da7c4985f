#!/bin/sh
# Runs as PID 1 of new PID, mount, network and UTS namespaces (unshare --pid --fork --mount
# --net --uts --mount-proc) and ends by exec'ing systemd over a throwaway overlay of `/`.
# Arguments: host directories to bind read-only at their own paths inside. $CGROUP: the
# name of a cgroup of its own. Used by the tests (tests/common/systemd.rs) and the bench
# (benches/bench.py, `restarts`): one script, so both boot the same systemd.
set -eu
# A cgroup of its own ($CGROUP, unique per boot): systemd takes the cgroup it starts in as
# its root, so its units (system.slice/solvit.service, ...) never share a cgroup with those
# of another systemd booted at the same time; whoever booted it removes it afterwards.
for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
  [ -f "$h/cgroup.procs" ] || continue
  mkdir "$h/$CGROUP"
  echo $$ > "$h/$CGROUP/cgroup.procs"
done
unset CGROUP
mount --make-rprivate /
# The scratch space is a tmpfs mounted in this mount namespace only: nothing on the host.
mount -t tmpfs tmpfs /mnt
R=/mnt
mkdir -p $R/u $R/w $R/m
mount -t overlay overlay -o lowerdir=/,upperdir=$R/u,workdir=$R/w $R/m
mount --rbind /dev $R/m/dev
mount --rbind /sys $R/m/sys
mount -t proc proc $R/m/proc
mount -t tmpfs tmpfs $R/m/run
mount -t tmpfs tmpfs $R/m/tmp
for dir in "$@"; do
  mkdir -p "$R/m$dir"
  mount --bind "$dir" "$R/m$dir"
  mount -o remount,bind,ro "$R/m$dir"
done
mkdir -p $R/m/run/systemd/system
# journald too, for the units' logs (test units have DefaultDependencies=no, which would
# not pull it in).
printf '[Unit]\nDescription=minimal\nWants=systemd-journald.socket systemd-journald.service\n' \
  > $R/m/run/systemd/system/minimal.target
# What would touch the host's kernel state (sysctls, binfmt, modules) is masked.
for u in systemd-sysctl.service systemd-binfmt.service systemd-modules-load.service \
         proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount; do
  ln -sf /dev/null $R/m/etc/systemd/system/$u
done
ip link set lo up
cd $R/m
mkdir -p oldroot
pivot_root . oldroot
umount -l /oldroot
export container=gunicorn-launcher-test
exec /usr/lib/systemd/systemd --system --unit=minimal.target
