#!/usr/bin/env bash
# Runs the IPVS backend's tests with real packets inside a qemu VM.
#
# The host kernel of lbkit's CI has no IPVS, so this boots Debian's kernel
# (package linux-image-amd64) under software emulation with a minimal
# initramfs: busybox-static, the statically linked test binary of
# backends/ipvs, iproute2's ip and nft (with their shared libraries), and
# the kernel modules the tests need, loaded with insmod in dependency
# order. Inside, /init runs the test binary with LBKIT_IN_VM=1 and
# LBKIT_E2E=1, prints one result line and powers off:
#
#   LBKIT-VM-RESULT: PASS
#   LBKIT-VM-RESULT: FAIL rc=N
#
# This script exits 0 on PASS, 1 on FAIL, 2 when the VM gave no result (a
# crash or a timeout), 3 when something it needs is missing. Run it as root
# (the kernel image is readable by root only); the Go test TestIPVSInVM
# runs it and turns its result into a test result.
#
# Environment (all optional):
#   OUT           work directory (default: a new temporary directory)
#   KVER          kernel version (default: the newest under /boot with ip_vs)
#   VM_TIMEOUT    seconds before the VM is killed (default 900)
#   VM_MEM        guest memory in MiB (default 1024)
#   TEST_RUN      -test.run pattern for the guest (default: every test)
#   TEST_BENCH    -test.bench pattern for the guest (default: no benchmark),
#                 with TEST_BENCHTIME (default 3x); LBKIT_BENCH_LARGE=1
#                 is passed on, for the large shapes
#   TEST_TIMEOUT  -test.timeout inside the guest (default 12m)
#   GO            the go command (default: go)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/lbkit-ipvs-vm.XXXXXX)}
VM_TIMEOUT=${VM_TIMEOUT:-900}
VM_MEM=${VM_MEM:-1024}
TEST_RUN=${TEST_RUN:-}
TEST_BENCH=${TEST_BENCH:-}
TEST_BENCHTIME=${TEST_BENCHTIME:-3x}
LBKIT_BENCH_LARGE=${LBKIT_BENCH_LARGE:-}
TEST_TIMEOUT=${TEST_TIMEOUT:-12m}
GO=${GO:-go}

say() { echo "vmtest: $*" >&2; }
missing() { echo "vmtest: MISSING: $*" >&2; exit 3; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# --- what the host must have ---
command -v qemu-system-x86_64 >/dev/null || missing "qemu-system-x86_64 (apt-get install qemu-system-x86)"
command -v cpio >/dev/null || missing "cpio"
command -v gzip >/dev/null || missing "gzip"
busybox=""
for b in /bin/busybox /usr/bin/busybox; do
	if [[ -x $b ]] && ! ldd "$b" >/dev/null 2>&1; then busybox=$b; break; fi
done
[[ -n $busybox ]] || missing "a statically linked busybox (apt-get install busybox-static)"
if [[ -z ${KVER:-} ]]; then
	for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V -r); do
		if ls /lib/modules/"$k"/kernel/net/netfilter/ipvs/ip_vs.ko* >/dev/null 2>&1; then KVER=$k; break; fi
	done
fi
[[ -n ${KVER:-} ]] || missing "a kernel under /boot with IPVS modules (apt-get install linux-image-amd64)"
kernel=/boot/vmlinuz-$KVER
moddir=/lib/modules/$KVER
[[ -r $kernel ]] || missing "$kernel readable (run as root)"
[[ -r $moddir/modules.dep ]] || missing "$moddir/modules.dep"
for tool in ip nft; do command -v $tool >/dev/null || missing "$tool on the host, to copy into the VM"; done

mkdir -p "$OUT"
root=$OUT/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib/modules,etc,proc,sys,dev,run,tmp,root,test}
say "kernel $KVER, work directory $OUT"

# --- the test binary ---
t0=$(now)
(cd "$repo" && CGO_ENABLED=0 "$GO" test -c -o "$OUT/ipvs.test" ./backends/ipvs/)
cp "$OUT/ipvs.test" "$root/test/ipvs.test"
cp -r "$repo/backends/ipvs/testdata" "$root/test/testdata"
say "test binary built in $(took "$t0")"

# --- userspace: busybox, ip, nft (knftables runs it), and, for failure
# dumps only, conntrack and ipvsadm when the host has them ---
t0=$(now)
cp "$busybox" "$root/bin/busybox"
copy_with_libs() {
	local bin=$1
	mkdir -p "$root$(dirname "$bin")"
	cp -L "$bin" "$root$bin"
	ldd "$bin" | awk '/=>/ { print $3 } /^\t\/.*ld-linux/ { print $1 }' | while read -r lib; do
		[[ -n $lib && -e $lib ]] || continue
		mkdir -p "$root$(dirname "$lib")"
		cp -Ln "$lib" "$root$lib"
	done
}
copy_with_libs "$(command -v ip)"
copy_with_libs "$(command -v nft)"
for opt in conntrack ipvsadm; do
	if p=$(command -v $opt); then copy_with_libs "$p"; fi
done
# The loader's canonical path: binaries ask for /lib64/ld-linux-x86-64.so.2.
if [[ -e /lib64/ld-linux-x86-64.so.2 && ! -e $root/lib64/ld-linux-x86-64.so.2 ]]; then
	mkdir -p "$root/lib64" && cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
fi
for f in /etc/protocols /etc/services; do [[ -e $f ]] && cp "$f" "$root$f"; done

# --- kernel modules, in dependency order from modules.dep ---
# crc32c_generic provides crc32c for libcrc32c (a soft dependency that
# modules.dep does not list).
modules="crc32c_generic
	nfnetlink nf_conntrack nf_nat nf_conntrack_netlink
	nf_tables nft_ct nft_chain_nat nft_nat nft_masq nft_reject nft_reject_ipv4 nf_reject_ipv4
	nft_reject_ipv6 nf_reject_ipv6
	ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_mh
	nf_flow_table_inet
	veth dummy bridge br_netfilter"
declare -A seen=()
order=()
visit() { # $1: path relative to $moddir
	local p=$1 deps d
	[[ -n ${seen[$p]:-} ]] && return
	seen[$p]=1
	deps=$(awk -F: -v p="$p" '$1 == p { print $2; exit }' "$moddir/modules.dep")
	for d in $deps; do visit "$d"; done
	order+=("$p")
}
for m in $modules; do
	p=$(awk -F: -v m="$m" '{ n = $1; sub(/.*\//, "", n); sub(/\.ko.*/, "", n); gsub(/-/, "_", n) } n == m { print $1; exit }' "$moddir/modules.dep")
	if [[ -z $p ]]; then
		if grep -q "/$m.ko" "$moddir/modules.builtin" 2>/dev/null; then continue; fi # built in
		missing "kernel module $m in $moddir"
	fi
	visit "$p"
done
: >"$root/lib/modules/load-order"
kdir=$root/lib/modules/$KVER
mkdir -p "$kdir"
for p in "${order[@]}"; do
	mkdir -p "$kdir/$(dirname "$p")"
	case $p in
	*.ko) cp "$moddir/$p" "$kdir/$p"; dst=$p ;;
	*.ko.xz) dst=${p%.xz}; xz -dc "$moddir/$p" >"$kdir/$dst" ;;
	*.ko.zst) dst=${p%.zst}; zstd -qdc "$moddir/$p" >"$kdir/$dst" ;;
	*) missing "a module format this script knows: $p" ;;
	esac
	echo "$dst" >>"$root/lib/modules/load-order"
	# A modules.dep of what is here, so that busybox modprobe (which
	# github.com/moby/ipvs runs, and the kernel for autoloading) works.
	deps=$(awk -F: -v p="$p" '$1 == p { print $2; exit }' "$moddir/modules.dep" | sed 's/\.ko\.[a-z]*/.ko/g')
	echo "$dst:$deps" >>"$kdir/modules.dep"
done
say "${#order[@]} modules: $(xargs -n1 basename <"$root/lib/modules/load-order" | tr '\n' ' ')"

# --- /init ---
run_flag=""
[[ -n $TEST_RUN ]] && run_flag="-test.run '$TEST_RUN'"
[[ -n $TEST_BENCH ]] && run_flag="$run_flag -test.bench '$TEST_BENCH' -test.benchtime $TEST_BENCHTIME -test.benchmem"
cat >"$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /var && ln -s /run /var/run
/usr/sbin/ip link set lo up
ln -s /bin/modprobe /sbin/modprobe
for m in \$(cat /lib/modules/load-order); do
	insmod /lib/modules/$KVER/\$m || echo "LBKIT-VM: insmod \$m failed"
done
echo "LBKIT-VM: booted in \$(cut -d' ' -f1 /proc/uptime)s (guest clock), kernel \$(uname -r)"
cd /test
start=\$(cut -d' ' -f1 /proc/uptime)
LBKIT_IN_VM=1 LBKIT_E2E=1 LBKIT_BENCH_LARGE=$LBKIT_BENCH_LARGE ./ipvs.test -test.v -test.timeout=$TEST_TIMEOUT $run_flag 2>&1
rc=\$?
echo "LBKIT-VM: tests took \$(awk -v a=\$start -v b=\$(cut -d' ' -f1 /proc/uptime) 'BEGIN { print b - a }')s (guest clock)"
if [ \$rc -eq 0 ]; then echo "LBKIT-VM-RESULT: PASS"; else echo "LBKIT-VM-RESULT: FAIL rc=\$rc"; fi
sync
poweroff -f
echo o >/proc/sysrq-trigger
EOF
chmod +x "$root/init"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$OUT/initramfs.gz"
say "initramfs $(du -h "$OUT/initramfs.gz" | cut -f1) assembled in $(took "$t0")"

# --- boot ---
t0=$(now)
say "booting (timeout ${VM_TIMEOUT}s; console in $OUT/console.log)"
set +e
timeout --kill-after=10 "$VM_TIMEOUT" qemu-system-x86_64 \
	-accel tcg -m "$VM_MEM" -smp 1 -nographic -no-reboot -nic none \
	-kernel "$kernel" -initrd "$OUT/initramfs.gz" \
	-append "console=ttyS0 panic=-1 quiet loglevel=3" </dev/null 2>&1 | tee "$OUT/console.log"
qemu_rc=${PIPESTATUS[0]}
set -e
say "VM ran $(took "$t0") (qemu exit status $qemu_rc)"

result=$(tr -d '\r' <"$OUT/console.log" | grep -a -o 'LBKIT-VM-RESULT: .*' | tail -1 || true)
case $result in
"LBKIT-VM-RESULT: PASS") exit 0 ;;
"LBKIT-VM-RESULT: FAIL"*) exit 1 ;;
*)
	[[ $qemu_rc -eq 124 || $qemu_rc -eq 137 ]] && say "the VM timed out after ${VM_TIMEOUT}s"
	say "no result line from the VM"
	exit 2
	;;
esac
