#!/vm/busybox sh
# PID 1 of the kernel-matrix VM (`cargo xtask vm`, xtask/src/vm.rs). The initramfs holds only
# busybox, this script, the modules that mount the host's root over virtio-9p, and /vm/config
# (written by xtask: paths, modules, and vm_runs, the list of test runs). Every other program
# (bash, ip, tc, tcpdump, bpftool, bpftrace, ...) is the host's own, read-only over 9p: the VM
# runs the host's Debian userland, only the kernel differs.
# Whatever happens, the last line is "VETHTRACE-VM: PASS" or "VETHTRACE-VM: FAIL <what>" and the
# machine powers off; xtask judges by that line.
B=/vm/busybox
uptime() { $B cut -d' ' -f1 /proc/uptime; }
fail() {
  echo "VETHTRACE-VM: FAIL $*"
  $B sync
  $B poweroff -f
}
. /vm/config
$B mkdir -p /proc /sys /dev /host /tmp /run
$B mount -t proc proc /proc || fail "mount /proc"
$B mount -t sysfs sysfs /sys || fail "mount /sys"
$B mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
echo "vm: kernel $($B uname -r), $($B nproc) cpus, init at $(uptime) s"

# virtio-pci and 9p, dependencies first (xtask ordered them from modules.dep).
for ko in $VM_BOOT_MODULES; do
  $B insmod "/vm/modules/$ko" || fail "insmod $ko"
done
$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host ||
  fail "cannot mount the host's root (virtio-9p)"

# The host's top-level directories, read-only, but for the kernel's file systems and scratch
# space, which stay the VM's own (the initramfs is a writable tmpfs).
for d in /host/*; do
  n=${d#/host/}
  case $n in
    proc | sys | dev | run | tmp | var | boot | lost+found | vm | host | init) continue ;;
  esac
  if [ -L "$d" ]; then
    $B ln -s "$($B readlink "$d")" "/$n" || fail "link /$n"
  elif [ -d "$d" ]; then
    $B mkdir -p "/$n" && $B mount --bind "$d" "/$n" || fail "bind $d"
  fi
done
# The workspace even when it lives under one of those (a CI clone in /tmp).
if [ ! -e "$VM_WORKSPACE/Cargo.toml" ]; then
  $B mkdir -p "$VM_WORKSPACE" && $B mount --bind "/host$VM_WORKSPACE" "$VM_WORKSPACE" || fail "bind $VM_WORKSPACE"
fi
$B mkdir -p /var/tmp /var/lib /var/cache /run/netns /dev/pts /dev/shm
$B ln -s /run /var/run
$B mount -t devpts devpts /dev/pts
$B mount -t tmpfs tmpfs /dev/shm
$B mount -t tracefs tracefs /sys/kernel/tracing || fail "mount tracefs"
$B mount -t debugfs debugfs /sys/kernel/debug || fail "mount debugfs"
$B mount -t bpf bpf /sys/fs/bpf || fail "mount bpffs"
$B mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "mount cgroup2"

# Under TCG a vethtrace start takes seconds: fewer random kills (tracer/tests/survive.rs).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin HOME=/tmp TMPDIR=/tmp CI=true VETHTRACE_KILLS=10
# Modules come from the unpacked kernel package (on the host, over 9p); the kernel's own
# requests (a qdisc, an nft expression) go through the same wrapper.
printf '#!/bin/sh\nexec /usr/sbin/modprobe -d %s "$@"\n' "$VM_MODULES_ROOT" >/vm/modprobe
$B chmod +x /vm/modprobe
echo /vm/modprobe >/proc/sys/kernel/modprobe
for m in $VM_MODULES; do
  /vm/modprobe "$m" || fail "modprobe $m"
done
ip link set lo up || fail "lo up"
export VETHTRACE_BIN="$VM_VETHTRACE" VETHTRACE_SCRIPTS="$VM_SCRIPTS"
echo "vm: userland ready at $(uptime) s"

if [ -n "$VM_EXEC" ]; then
  cd "$VM_WORKSPACE" || fail "cd $VM_WORKSPACE"
  if bash -c "$VM_EXEC" </dev/null; then
    $B sync
    echo "VETHTRACE-VM: PASS"
  else
    fail "--exec exited with $?"
  fi
  $B poweroff -f
fi

# vm_test <name> <probe or ""> <binary>: one test binary, one test at a time, no colours.
failed=""
vm_test() {
  label=$1
  [ -n "$2" ] && label="$1 (VETHTRACE_PROBE=$2)"
  echo "vm: running $label"
  start=$(uptime)
  if (cd "$VM_WORKDIR" && eval "VETHTRACE_PROBE=\"\$2\" \"\$3\" --test-threads=1 --color never $VM_TEST_ARGS" </dev/null); then
    echo "vm: ok $label ($start s -> $(uptime) s)"
  else
    echo "vm: FAILED $label ($start s -> $(uptime) s)"
    failed="$failed, $label"
  fi
}
vm_runs
$B sync
if [ -n "$failed" ]; then
  echo "VETHTRACE-VM: FAIL ${failed#, }"
else
  echo "VETHTRACE-VM: PASS"
fi
$B poweroff -f
