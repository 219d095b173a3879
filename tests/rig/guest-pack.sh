# Shared by tests/rig/build-guest-radeonsi, build-guest-opencl and
# tests/mesa/run-radeonsi-native: building the programs that load the
# series' Mesa, and packing a guest program with its shared libraries as a
# cpio archive run-vm appends to an initramfs.  Sourced after tools/lib.sh.

# link_vm_radeonsi OUT DRIVER [LDFLAGS...]: tests/rig/vm_radeonsi.c against
# the full build (`tools/mesa build`, _deps/build/mesa-full), loading the
# driver from DRIVER; only Mesa's xmlconfig and util archives are linked
# in (driParseOptionInfo: the driconf cache the pipe loader builds).
link_vm_radeonsi() {
	local out=$1 drv=$2 tree=$DEPS/build/mesa-series b=$DEPS/build/mesa-full
	shift 2
	nice -n 10 "$TOP/tools/in-root" trixie gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror \
		-DHAVE_PTHREAD -DHAVE_ENDIAN_H -DHAVE_STRUCT_TIMESPEC -DUSE_GCC_ATOMIC_BUILTINS \
		-DHAVE_SECURE_GETENV -DRSI_DRIVER="\"$drv\"" \
		-I"$tree/include" -I"$tree/src" -I"$tree/src/gallium/include" \
		-I"$tree/src/gallium/auxiliary" -I"$b/src" -I/usr/include/libdrm \
		-o "$out" "$TOP/tests/rig/vm_radeonsi.c" \
		-Wl,--start-group "$b/src/util/libxmlconfig.a" "$b/src/util/libmesa_util.a" \
		"$b/src/util/libmesa_util_sse41.a" "$b/src/util/blake3/libblake3.a" \
		"$b/src/c11/impl/libmesa_util_c11.a" -Wl,--end-group "$@" \
		-ldrm -lexpat -lz -lzstd -lm -lpthread -ldl
}

# guest_libs DIR FILE...: every library the FILEs (relative to DIR) load,
# as the trixie root resolves them, copied (symlinks followed) to DIR/lib.
guest_libs() {
	local dir=$1; shift
	"$TOP/tools/in-root" trixie sh -c "set -e; cd '$dir'
		for f in $*; do ldd \"\$f\"; done |
			sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/lib64\/[^ ]*\) .*/\1/p' |
			sort -u | while read -r l; do cp -L \"\$l\" lib/; done"
	[ -f "$dir/lib/ld-linux-x86-64.so.2" ] || die "ld.so not collected in $dir/lib"
}

# guest_cpio ROOT OUT: ROOT's tree as a gzip'd newc archive.
guest_cpio() {
	"$TOP/tools/in-root" --cwd "$1" trixie sh -c \
		"find . -mindepth 1 | sed 's,^\./,,' | sort | cpio -o -H newc --quiet | gzip -1 > '$2'"
	log "built $2 ($(du -sm "$1" | cut -f1) MB unpacked, $(( $(stat -c %s "$2") / 1048576 )) MB compressed)"
}
