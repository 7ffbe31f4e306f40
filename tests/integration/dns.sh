#!/usr/bin/env bash
# dns.sh - the DNS module against a real server (TAP).
#
# Starts tests/dns/dnsenv (nsd + the fault server) in a temporary
# directory and queries through build/tests/tools/dnsq, i.e. through
# policy/dns.c and libunbound: record types, NXDOMAIN/NODATA, faults
# (timeout, SERVFAIL, truncation, oversized answers, garbage), and many
# threads at once. Stops everything it started, also on failure.
set -u
top=${MXW_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${MXW_BUILD:-build}
case $B in /*) ;; *) B=$top/$B ;; esac
DNSQ=$B/tests/tools/dnsq
DNSENV=$top/tests/dns/dnsenv

n=0 failed=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
nok()  { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else nok "$name"; fi; }
# report NAME STATUS - ok when STATUS is 0
report() { if [ "$2" -eq 0 ]; then ok "$1"; else nok "$1"; fi; }

if [ ! -x "$DNSQ" ]; then
	echo "1..1"; skip "dns integration" "$DNSQ not built (make unit-tests)"
	exit 0
fi
for t in nsd nsd-checkzone; do
	if ! command -v $t >/dev/null; then
		echo "1..1"; skip "dns integration" "$t not installed (package nsd)"
		exit 0
	fi
done

tmp=$(mktemp -d)
cleanup() { "$DNSENV" stop "$tmp/run" >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
mkdir -p "$tmp/run/zones"

# a zone made at test time, as other tests do with fresh DKIM keys
cat >"$tmp/run/zones/generated.test.zone" <<'EOF'
$TTL 60
@	SOA	ns.generated.test. h.generated.test. 1 60 60 60 60
@	NS	ns.generated.test.
ns	A	127.0.0.1
fresh	TXT	"made at test time"
EOF

if ! "$DNSENV" start "$tmp/run" >"$tmp/dnsenv.log" 2>&1; then
	echo "1..1"; nok "dnsenv start"; sed 's/^/# /' "$tmp/dnsenv.log"
	exit 1
fi
. "$tmp/run/dns.env"
CONF=$DNS_UNBOUND_CONF

# q NAME TYPE [dnsq options] - the answer without the timing line
q() {
	local name=$1 type=$2; shift 2
	"$DNSQ" -c "$CONF" -t 2000 "$@" "$name" "$type" 2>&1 |
		grep -v -e '^elapsed_ms' -e '^query '
}
# expect NAME TYPE EXPECTED... - the answer is exactly these lines
expect() {
	local name=$1 type=$2 got want; shift 2
	got=$(q "$name" "$type")
	want=$(printf '%s\n' "$@")
	if [ "$got" = "$want" ]; then
		ok "$name $type: ${1#status }"
	else
		nok "$name $type"
		printf '%s\n' "# expected:" "$want" "# got:" "$got" | sed 's/^/# /'
	fi
}
# elapsed NAME TYPE TIMEOUT - prints "status ms"
elapsed() {
	"$DNSQ" -c "$CONF" -t "$3" "$1" "$2" 2>&1 |
		awk '/^status/ { s = $2 } /^elapsed_ms/ { print s, $2 }'
}


# --- the real authoritative server (through the generated unbound.conf)
expect host.dnsenv.test A "status ok count 2 secure 0" \
	"rr A 192.0.2.10" "rr A 192.0.2.11"
expect HOST.DnsEnv.Test. A "status ok count 2 secure 0" \
	"rr A 192.0.2.10" "rr A 192.0.2.11"
expect host.dnsenv.test AAAA "status ok count 1 secure 0" \
	"rr AAAA 2001:db8::10"
expect mail.dnsenv.test MX "status ok count 2 secure 0" \
	"rr MX 10 mx1.dnsenv.test" "rr MX 20 mx2.dnsenv.test"
expect nullmx.dnsenv.test MX "status ok count 1 secure 0" "rr MX 0 "
expect txt.dnsenv.test TXT "status ok count 2 secure 0" \
	"rr TXT second record" "rr TXT v=spf1 ip4:192.0.2.0/24 -all"
long=$(printf '0123456789%.0s' $(seq 25))
expect long.dnsenv.test TXT "status ok count 1 secure 0" "rr TXT ${long}tail"
expect alias.dnsenv.test A "status ok count 2 secure 0" \
	"rr A 192.0.2.10" "rr A 192.0.2.11"
expect nothere.dnsenv.test A "status nxdomain count 0 secure 0"
expect dangling.dnsenv.test A "status nxdomain count 0 secure 0"
expect host.dnsenv.test MX "status nodata count 0 secure 0"
expect ent.dnsenv.test A "status nodata count 0 secure 0"
expect fresh.generated.test TXT "status ok count 1 secure 0" \
	"rr TXT made at test time"

got=$("$DNSQ" -c "$CONF" -x 192.0.2.11 PTR 2>&1 | grep '^rr' | tr '\n' ' ')
check "PTR of 192.0.2.11 (reverse name, two PTRs, lower-cased)" \
	[ "$got" = "rr PTR host.dnsenv.test rr PTR second.dnsenv.test " ]
got=$("$DNSQ" -c "$CONF" -x 2001:db8::10 PTR 2>&1 | grep '^rr')
check "PTR of 2001:db8::10 (ip6.arpa)" [ "$got" = "rr PTR host.dnsenv.test" ]

# a plain forwarder (dns_server) to the authoritative-only nsd works too
printf 'server:\n\tlocal-zone: "test." nodefault\n' >"$tmp/min.conf"
got=$("$DNSQ" -s "$DNS_SERVER" -c "$tmp/min.conf" host.dnsenv.test AAAA 2>&1 |
	grep '^rr')
check "forwarding to $DNS_SERVER (server option)" [ "$got" = "rr AAAA 2001:db8::10" ]

# --- faults
expect servfail.fault.test A "status servfail count 0 secure 0"
expect refused.fault.test A "status servfail count 0 secure 0"
expect tc.fault.test A "status servfail count 0 secure 0"
expect badrdata.fault.test A "status malformed count 0 secure 0"
# 300 records: over DNS_MAX_RR, refused as a whole
expect huge.fault.test TXT "status malformed count 0 secure 0"
got=$(q many.fault.test TXT | head -1)
check "200 TXT records over TCP: all kept" [ "$got" = "status ok count 200 secure 0" ]

# a timeout ends within the timeout plus a small margin
set -- $(elapsed _dmarc.timeout.fault.test TXT 700)
r=0; [ "${1:-}" = timeout ] && [ "${2:-0}" -ge 690 ] && [ "${2:-0}" -le 1000 ] || r=1
report "timeout after 700 ms (${2:-?} ms)" $r
set -- $(elapsed garbage.fault.test A 500)
r=0; [ "${1:-}" = timeout ] && [ "${2:-0}" -le 800 ] || r=1
report "garbage answers are ignored: timeout (${2:-?} ms)" $r
# the fault server answers slow.fault.test after 300 ms
set -- $(elapsed slow.fault.test A 100)
r=0; [ "${1:-}" = timeout ] && [ "${2:-0}" -le 400 ] || r=1
report "answer later than the timeout: timeout (${2:-?} ms)" $r
set -- $(elapsed slow2.slow.fault.test A 3000)
check "answer within the timeout: ok" [ "${1:-}" = ok ]

# --- many threads at once, answers and timeouts mixed
start=$(date +%s%N)
"$DNSQ" -c "$CONF" -t 400 -n 16 -r 5 \
	host.dnsenv.test A mail.dnsenv.test MX txt.dnsenv.test TXT \
	nothere.dnsenv.test A servfail.fault.test A timeout.fault.test A \
	many.fault.test TXT huge.fault.test TXT \
	>"$tmp/conc.out" 2>&1
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
summary=$(grep '^concurrent' "$tmp/conc.out")
# each thread: 5 rounds with one 400 ms timeout each, run in parallel
r=0
[ $rc -eq 0 ] && [ $ms -lt 8000 ] &&
	[ "$summary" = "concurrent threads 16 queries 640 mismatches 0" ] || r=1
report "16 threads x 5 rounds x 8 queries: $summary (${ms} ms)" $r
[ $rc -eq 0 ] || sed 's/^/# /' "$tmp/conc.out" | grep -v '^# rr' | head -20

"$DNSENV" stop "$tmp/run"
pids_left=$(ls "$tmp/run"/*.pid.dnsenv 2>/dev/null)
check "dnsenv stop" [ -z "$pids_left" ]
echo "1..$n"
[ $failed -eq 0 ]
