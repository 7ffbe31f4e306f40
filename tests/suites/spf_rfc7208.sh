#!/usr/bin/env bash
# spf_rfc7208.sh - the RFC 7208 SPF test suite through mxwarden's SPF check.
#
# Every test of the openspf.org suite (rfc7208-tests.yml, in the shared
# conformance folder, never copied here) is evaluated by the spfq test
# tool (policy/spf.c with the real libunbound resolver) against a
# loopback DNS server serving that test's YAML document (spf/zonedns.py).
# Output: TAP, one line per test; tests listed in spf/expected-failures
# are "# SKIP expected failure: REASON"; a per-section table and the
# closing "N passed, M failed" line as comments. See spf/rfc7208.py.
set -u
here=$(cd "$(dirname "$0")" && pwd)
MXW_TOP=${MXW_TOP:-$(cd "$here/../.." && pwd)}
MXW_BUILD=${MXW_BUILD:-build}
case $MXW_BUILD in
/*) bin=$MXW_BUILD ;;
*)  bin=$MXW_TOP/$MXW_BUILD ;;
esac
data=$MXW_TOP/../shared/conformance/spf/rfc7208-tests.yml
spfq=$bin/tests/tools/spfq
py=/usr/bin/python3

skip_all() { echo "ok 1 - rfc7208 suite # SKIP $1"; echo "1..1"; exit 0; }

[ -f "$data" ] || skip_all "suite data not found (\$MXW_TOP/../shared/conformance/spf/rfc7208-tests.yml)"
[ -x "$py" ] || py=python3
"$py" -c 'import yaml, dns.message' 2>/dev/null ||
	skip_all "needs python3 with python3-yaml and python3-dnspython (contrib/install-deps.sh test)"
if [ ! -x "$spfq" ]; then
	echo "not ok 1 - rfc7208 suite: $spfq not built (make unit-tests)"
	echo "1..1"
	exit 1
fi
exec timeout 600 "$py" "$here/spf/rfc7208.py" --spfq "$spfq" --yaml "$data" \
	--xfail "$here/spf/expected-failures"
