# Shared by tests/rig/build-guest-radeonsi and build-guest-opencl: a guest
# program with shared libraries, packed as a cpio archive run-vm appends
# to an initramfs.  Sourced after tools/lib.sh.

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
