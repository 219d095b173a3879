# Shared helpers for the tools/ scripts.  Sourced, not executed.

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Every download and build lives under one ignored folder.
DEPS=${USERPTR_DEPS:-$TOP/_deps}
ROOTS=$DEPS/roots

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# One compiler cache for every build in the trixie root (Mesa's meson
# finds ccache itself; tools/guest-kernel names it): the Mesa builds of
# different options share the objects they have in common.
export CCACHE_DIR=$DEPS/ccache CCACHE_MAXSIZE=6G

# The Debian archive address this machine's apt is configured with.  It is
# read at run time so no registry host name is ever written into the tree.
debian_mirror() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# deb822: the first URIs: line whose stanza has a non-security suite
		uri=$(awk '
			/^URIs:/ { u = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /-security$/) s = 1 }
			/^$/ { if (u != "" && s) { print u; exit } u = ""; s = 0 }
			END { if (u != "" && s) print u }' "$f" | head -n1)
		[ -n "$uri" ] && { echo "${uri%/}"; return 0; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk '$1 == "deb" && $3 !~ /-security$/ {
			for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' "$f")
		[ -n "$uri" ] && { echo "${uri%/}"; return 0; }
	done
	return 1
}

# The virglrenderer builds tools/setup makes (tools/build-virgl); a user's
# own builds override them (set but empty: none).
VIRGL_BUILD=${VIRGL_BUILD-$DEPS/build/virgl-1.3.0-series}
VIRGL_UPSTREAM_BUILD=${VIRGL_UPSTREAM_BUILD-$DEPS/build/virgl-1.3.0}

# build/release: the simulated amdgpu, the host handler and the tests,
# optimized (what the demo, the rig and the benchmarks run).  Its output
# goes to the caller's stdout/stderr.
build_release() {
	local b=$TOP/build/release
	if [ ! -f "$b/build.ninja" ]; then
		"$TOP/tools/in-root" trixie meson setup "$b" \
			-Dmesa_src="$DEPS/src/mesa-25.0.7" \
			-Dmesa_build="$DEPS/build/mesa-shim" -Dbuildtype=release || return 1
	fi
	"$TOP/tools/in-root" trixie ninja -C "$b"
}
