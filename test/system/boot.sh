#!/usr/bin/env bash
# The first process of a test machine (test/system/machine.ts starts it with unshare, in the
# machine's network namespace and cgroup, as PID 1 of a new PID namespace): it mounts the
# machine's file systems, prepares its /etc on the first boot, and becomes systemd.
#
# Usage: boot.sh RUN_DIR first|again HIDDEN_DIR
#   RUN_DIR holds upper/ and work/ (the overlay's writable layer, kept across reboots),
#   root/ (where the machine's / is mounted), firmware/dmi/id/ (the machine's DMI strings)
#   and console (what systemd writes to /dev/console). HIDDEN_DIR (the checkout) is empty in
#   the machine, so that only what a package installs can answer there.
set -euo pipefail
run=$1 boot=$2 hidden=$3
root=$run/root

# The machine's / is the host's, with every write going to the run's own layer.
mount -t overlay cn-machine -o "lowerdir=/,upperdir=$run/upper,workdir=$run/work" "$root"

mount -t proc proc "$root/proc"
# The kernel's settings are the host's, except those of the machine's own network namespace.
mount --bind "$root/proc/sys" "$root/proc/sys"
mount --bind "$root/proc/sys/net" "$root/proc/sys/net"
# A boot id of its own at each boot, as a VM gets, so that journalctl -b tells the boots apart.
tr -d '\n' < /proc/sys/kernel/random/uuid > "$run/boot_id"
mount --bind "$run/boot_id" "$root/proc/sys/kernel/random/boot_id"
mount -o remount,bind,ro "$root/proc/sys"
if [ -e "$root/proc/sysrq-trigger" ]; then
  mount --bind "$root/proc/sysrq-trigger" "$root/proc/sysrq-trigger"
  mount -o remount,bind,ro "$root/proc/sysrq-trigger"
fi

# sysfs of the machine's network namespace, read-only as in a container, with the cloud's
# firmware strings in /sys/class/dmi/id: the agent finds the cloud from them, as on a VM.
mount -t sysfs -o ro sysfs "$root/sys"
mount -t overlay cn-firmware -o "lowerdir=$run/firmware:$root/sys/class" "$root/sys/class"
# The machine's cgroup (its cgroup namespace's root) is where systemd puts its units.
mount -t cgroup2 cgroup2 "$root/sys/fs/cgroup"

# A /dev of its own: the character devices every system has, and a console that is a file.
mount -t tmpfs -o mode=0755,size=1m cn-dev "$root/dev"
mknod -m 0666 "$root/dev/null" c 1 3
mknod -m 0666 "$root/dev/zero" c 1 5
mknod -m 0666 "$root/dev/full" c 1 7
mknod -m 0666 "$root/dev/random" c 1 8
mknod -m 0666 "$root/dev/urandom" c 1 9
mknod -m 0666 "$root/dev/tty" c 5 0
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777 cn-shm "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
touch "$root/dev/console"
mount --bind "$run/console" "$root/dev/console"

mount -t tmpfs -o mode=0755,size=256m cn-run "$root/run"
mount -t tmpfs -o mode=1777,size=256m cn-tmp "$root/tmp"
if [ -d "$root$hidden" ]; then mount -t tmpfs -o mode=0755,size=1m cn-hidden "$root$hidden"; fi

if [ "$boot" = first ]; then
  # Through the overlay, so only the run's layer changes. A fresh /etc/systemd/system hides
  # what the host enabled (its timers, getty, database, ...): the machine boots Debian's
  # static units and what the package enables, the same on every host.
  rm -rf "$root/etc/systemd/system"
  mkdir "$root/etc/systemd/system"
  # Units that would touch the host (its devices, kernel modules, global kernel settings,
  # clock, random seed) or the network the test controls, and terminals nobody logs in on.
  for unit in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
      systemd-udev-trigger.service systemd-udev-settle.service \
      systemd-modules-load.service kmod-static-nodes.service systemd-sysctl.service \
      systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
      systemd-random-seed.service systemd-timesyncd.service systemd-pstore.service \
      systemd-hwdb-update.service systemd-remount-fs.service \
      networking.service systemd-networkd.service systemd-networkd.socket systemd-resolved.service \
      NetworkManager.service ifup@.service \
      getty-static.service getty@.service serial-getty@.service console-getty.service \
      container-getty@.service \
      systemd-tmpfiles-clean.timer apt-daily.timer apt-daily-upgrade.timer man-db.timer \
      fstrim.timer e2scrub_all.timer e2scrub_reap.service dpkg-db-backup.timer logrotate.timer; do
    ln -s /dev/null "$root/etc/systemd/system/$unit"
  done
  # Generators turn the host's fstab, init scripts and crypttab into units: none belongs here.
  mkdir -p "$root/etc/systemd/system-generators"
  for generator in /lib/systemd/system-generators/*; do
    ln -sf /dev/null "$root/etc/systemd/system-generators/${generator##*/}"
  done
  # A machine of its own name and identity, and no policy-rc.d: a container image's would stop
  # deb-systemd-invoke from starting what a package installs.
  echo cn-machine > "$root/etc/hostname"
  tr -d '-' < /proc/sys/kernel/random/uuid > "$root/etc/machine-id"
  rm -f "$root/usr/sbin/policy-rc.d"
  # The package's users are the package's to create (the host's other tests make them too).
  for user in cloud-network cloud-network-helper; do
    sed -i "/^$user:/d" "$root/etc/passwd" "$root/etc/shadow" "$root/etc/group" "$root/etc/gshadow"
  done
fi

cd "$root"
mkdir -p .host
pivot_root . .host
umount -l /.host
rmdir /.host
# Capabilities the machine's services never need and that reach beyond its namespaces.
exec env -i container=other PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  setpriv --bounding-set=-sys_module,-sys_time,-sys_rawio,-syslog,-wake_alarm,-block_suspend,-mac_admin,-mac_override \
  /lib/systemd/systemd --system
