#!/bin/sh
# install-deps.sh - install the Debian 12 packages mxwarden needs.
#
# Usage: contrib/install-deps.sh build|test|bench
#   build  libraries and tools to compile and run mxwarden
#   test   also the real servers and clients the test suites talk to
#   bench  also what only the benchmark harness uses (a reference relay)
#
# Only what is missing is installed, and the script names it first.
# Needs root (apt-get) when something is missing; does nothing otherwise.
set -eu

build_pkgs="gcc make pkg-config libmilter-dev libspf2-dev libopendkim-dev
libopendmarc-dev libpcre2-dev libsqlite3-dev libssl-dev libunbound-dev libevent-dev
libxml2-dev
publicsuffix sqlite3 ca-certificates"

test_pkgs="libcmocka-dev nsd postfix swaks opendkim-tools
libmail-dkim-perl python3 python3-dnspython python3-dkim python3-nacl
miltertest dnsutils valgrind libclang-rt-14-dev iproute2 python3-yaml"

bench_pkgs="haproxy"

case "${1:-build}" in
build) want="$build_pkgs" ;;
test)  want="$build_pkgs $test_pkgs" ;;
bench) want="$build_pkgs $test_pkgs $bench_pkgs" ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done

[ -z "$missing" ] && exit 0

echo "install-deps: installing missing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: not root; run as root: apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure itself; the tests run private instances.
echo "postfix postfix/main_mailer_type select No configuration" |
	debconf-set-selections
apt-get update -qq
# The tests run their own nsd and Postfix instances on loopback ports:
# keep Debian from starting the system-wide daemons while installing
# (policy-rc.d, only for the duration of this install).
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	made_policy=1
fi
trap '[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
