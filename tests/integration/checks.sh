#!/usr/bin/env bash
# shellcheck disable=SC2154  # J_* are set by eval of checks/jfields.py
# checks.sh - the check matrix over a real DNS server and real DKIM
# signers: every check's results, symbols, final action, SMTP stage and
# reply code as `mxwarden check --json` reports them, and the exact
# Authentication-Results and X-Spam-Status values for a few messages.
#
# Data: the comment blocks of tests/dns/zones/*.zone and
# tests/dkim/dmarc.test.zone.in (addresses 127.0.0.10-39 and the names
# under iprev.test, spf.test, sender.test, dkim.test, dmarc.test,
# fault.test). Messages are signed at test time (tests/dkim/sign).
#
# Groups: spf, iprev, helo, sender, dkim, dmarc, authres, input. Every
# test name starts with its group. One `check` run per case (about 30 ms
# each; the silent-server cases wait for dns_timeout).
. "$(dirname "$0")/lib.sh"
mxw_rundir
cd "$MXW_TOP" || exit 1
MXW=$MXW_BIN/mxwarden
HERE=$MXW_TOP/tests/integration/checks
PY=/usr/bin/python3

[ -x "$MXW" ] || skip_all "$MXW not built"
[ -x "$PY" ] || skip_all "no /usr/bin/python3 (Debian's python3)"
"$PY" -c 'import dns.message, dkim' 2>/dev/null ||
	skip_all "python3-dnspython or python3-dkim missing"
/usr/bin/perl -MMail::DKIM::Signer -e 1 2>/dev/null ||
	skip_all "libmail-dkim-perl missing"

# One binary for the whole run, even if the tree is rebuilt meanwhile.
cp "$MXW" "$MXW_RUN/mxwarden" || { echo "Bail out! cannot copy $MXW"; exit 1; }
MXW=$MXW_RUN/mxwarden

sh "$MXW_TOP/tests/dkim/keys" "$MXW_RUN" >"$MXW_RUN/keys.log" 2>&1 || {
	cat "$MXW_RUN/keys.log"; echo "Bail out! tests/dkim/keys failed"; exit 1; }
start_dns "$MXW_RUN" || { echo "Bail out! DNS environment did not start"; exit 1; }
# No internal network: ::1 is an ordinary client here (the shipped
# rules trust it), so IPv6 SPF can be tested from it.
echo 'list internal_networks' >"$MXW_RUN/local.rules"
mxw_write_conf "$MXW_RUN" "$(free_port)"
CONF=$MXW_RUN/mxwarden.conf
# The silent-server cases wait for the whole timeout (some twice); the
# loopback servers answer in milliseconds, so 1 s keeps the suite short.
sed -i 's/^dns_timeout = .*/dns_timeout = 1s/' "$CONF"
grep -q '^dns_timeout = 1s$' "$CONF" || { echo "Bail out! cannot set dns_timeout"; exit 1; }
OUT=$MXW_RUN/out
mkdir -p "$OUT"

# ---- helpers ----------------------------------------------------------

# chk NAME IP HELO FROM MSG [RCPT] - one `mxwarden check --json`; sets
# J_rc (exit status) and the J_* fields of checks/jfields.py. NAME
# names the files kept under $OUT. An empty FROM is the null sender.
chk() {
	local name=$1 ip=$2 helo=$3 from=$4 msg=$5 rcpt=${6:-b@local.test}
	local args=(check -c "$CONF" --json --ip "$ip" --rcpt "$rcpt" --from "$from")
	[ -n "$helo" ] && args+=(--helo "$helo")
	timeout 60 "$MXW" "${args[@]}" <"$msg" >"$OUT/$name.json" 2>"$OUT/$name.err"
	J_rc=$?
	case $J_rc in 0 | 1 | 2) ;; *) BAD_RUNS+=("$name: exit $J_rc") ;; esac
	grep -q 'Sanitizer\|runtime error' "$OUT/$name.err" &&
		BAD_RUNS+=("$name: sanitizer report")
	N_RUNS=$((N_RUNS + 1))
	eval "$("$PY" "$HERE/jfields.py" "$OUT/$name.json")"
	if [ "$J_json" != ok ]; then
		diag "$name: no JSON (exit $J_rc): $J_error" \
		    "$(tail -5 "$OUT/$name.err")"
	fi
}

N_RUNS=0
BAD_RUNS=()

# has_sym SYMBOL NAME / lacks_sym SYMBOL NAME - on the last chk.
has_sym() {
	if [[ " $J_syms " == *" $1 "* ]]; then
		ok "$2"
	else
		not_ok "$2" "symbols: $J_syms" "missing:  $1"
	fi
}
lacks_sym() {
	if [[ " $J_syms " == *" $1 "* ]]; then
		not_ok "$2" "symbols: $J_syms" "unexpected: $1"
	else
		ok "$2"
	fi
}

# no_sym_like REGEX NAME - no symbol of the last chk matches REGEX.
no_sym_like() {
	local s
	for s in $J_syms; do
		if [[ $s =~ $1 ]]; then
			not_ok "$2" "symbols: $J_syms" "unexpected: $s"
			return
		fi
	done
	ok "$2"
}

# verdict ACTION STAGE [CODE XCODE] NAME - the final action, its stage,
# the reply code (none when CODE is omitted) and the exit status.
verdict() {
	local want_rc=0 got want
	case $1 in reject | discard) want_rc=1 ;; tempfail) want_rc=2 ;; esac
	if [ $# -eq 5 ]; then
		want="$1 at $2, $3 $4, exit $want_rc"
		got="$J_action at $J_stage, $J_code $J_xcode, exit $J_rc"
		is "$got" "$want" "$5"
	else
		want="$1 at $2, no reply, exit $want_rc"
		got="$J_action at $J_stage, ${J_code:-no reply}, exit $J_rc"
		is "$got" "$want" "$3"
	fi
}

# defined NAME [WHAT] - the last chk (run NAME) ended with a verdict:
# JSON, an action of the closed set, exit 0/1/2 (not a crash or a
# sanitizer exit), and no sanitizer report. WHAT names the input.
defined() {
	local why=
	[ "$J_json" = ok ] || why="no JSON"
	case $J_action in
	accept | quarantine | tempfail | reject | discard) ;;
	*) why="${why:+$why, }action '$J_action'" ;;
	esac
	case $J_rc in 0 | 1 | 2) ;; *) why="${why:+$why, }exit $J_rc" ;; esac
	grep -q 'Sanitizer\|runtime error' "$OUT/$1.err" 2>/dev/null &&
		why="${why:+$why, }sanitizer report"
	local name="input: ${2:-$1} ends with a defined verdict"
	if [ -z "$why" ]; then
		ok "$name"
	else
		not_ok "$name" "$why" "$(tail -5 "$OUT/$1.err")"
	fi
}

# msg NAME FROM [HEADER...] - $MXW_RUN/NAME.eml with From, To, Subject,
# Date and Message-ID (fixed, so the files are stable) and a short body;
# prints the path. CRLF line ends, as on the wire.
msg() {
	local f=$MXW_RUN/$1.eml from=$2 h
	shift 2
	{
		for h in "$@"; do
			printf '%s\r\n' "$h"
		done
		printf 'From: Sender <%s>\r\n' "$from"
		printf 'To: <b@local.test>\r\n'
		printf 'Subject: check matrix %s\r\n' "${f##*/}"
		printf 'Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n'
		printf 'Message-ID: <%s@checks.mxw.test>\r\n' "${f##*/}"
		printf '\r\n'
		printf 'Hello,\r\nthis is the check matrix.\r\n'
	} >"$f"
	echo "$f"
}

# signed NAME ALG DOMAIN SELECTOR IN - sign IN into $MXW_RUN/NAME.eml.
signed() {
	local f=$MXW_RUN/$1.eml
	if ! sh "$MXW_TOP/tests/dkim/sign" "$MXW_RUN" "$2" "$3" "$4" <"$5" \
	    >"$f" 2>"$MXW_RUN/$1.sign.err"; then
		diag "signing $1 failed:" "$(cat "$MXW_RUN/$1.sign.err")"
		: >"$f"
	fi
	echo "$f"
}

# bprefix FILE - the first 8 characters of the b= tag of FILE's first
# DKIM-Signature (what header.b= carries).
bprefix() {
	header_of "$1" DKIM-Signature | tr -d ' \t' |
		sed -n 's/.*;b=\([^;]*\).*/\1/p' | cut -c1-8
}

# The sender for iprev/HELO cases: it exists, has no SPF (none) and no
# DMARC record, so those cases show only what they test.
QUIET=a@mx.sender.test
quiet_msg=$(msg quiet "$QUIET")

# ---- SPF (RFC 7208) ------------------------------------------------------

m=$(msg spf_pass a@pass.spf.test)
chk spf_pass 127.0.0.20 good10.iprev.test a@pass.spf.test "$m"
is "$J_spf/$J_spf_id/$J_spf_domain" "pass/mailfrom/pass.spf.test" "spf: pass (ip4 match, MAIL FROM identity)"
has_sym SPF_PASS "spf: pass gives SPF_PASS"
verdict accept eom "spf: pass is accepted at end of message"
is "$J_ar" "$(printf 'mx.mxw.test;\n\tiprev=permerror policy.iprev=127.0.0.20;\n\tspf=pass (domain of pass.spf.test designates 127.0.0.20 as permitted sender) smtp.mailfrom=a@pass.spf.test;\n\tdkim=none;\n\tdmarc=none header.from=pass.spf.test')" \
	"spf: Authentication-Results for an SPF pass, exact"
is "$J_xss" "No, score=1.7 required=5.0 tests=DKIM_NONE,DMARC_NONE,IPREV_NONE,SPF_PASS" \
	"spf: X-Spam-Status for an SPF pass, exact"
is "$J_flag" "" "spf: no X-Spam-Flag below the add_header threshold"

m=$(msg spf_fail a@pass.spf.test)
chk spf_fail 127.0.0.21 good10.iprev.test a@pass.spf.test "$m"
is "$J_spf" fail "spf: fail (-all, client not listed)"
has_sym SPF_FAIL "spf: fail gives SPF_FAIL"
verdict accept eom "spf: fail alone does not reject"
is "$J_xss" "Yes, score=5.2 required=5.0 tests=DKIM_NONE,DMARC_NONE,IPREV_NONE,SPF_FAIL" \
	"spf: X-Spam-Status over the threshold, exact"
is "$J_flag" YES "spf: X-Spam-Flag: YES over the threshold"
like "$J_ar" $'\tspf=fail \\(domain of pass.spf.test does not designate 127.0.0.21 as permitted sender\\) smtp.mailfrom=a@pass.spf.test;' \
	"spf: Authentication-Results says spf=fail"

m=$(msg spf_fail_lo a@fail.spf.test)
chk spf_fail_lo 127.0.0.1 localhost.mxw.test a@fail.spf.test "$m"
is "$J_spf" fail "spf: fail for 127.0.0.1 too (no loopback free pass)"

m=$(msg spf_softfail a@softfail.spf.test)
chk spf_softfail 127.0.0.21 good10.iprev.test a@softfail.spf.test "$m"
is "$J_spf" softfail "spf: softfail (~all)"
has_sym SPF_SOFTFAIL "spf: softfail gives SPF_SOFTFAIL"
verdict accept eom "spf: softfail is accepted"

m=$(msg spf_neutral a@neutral.spf.test)
chk spf_neutral 127.0.0.21 good10.iprev.test a@neutral.spf.test "$m"
is "$J_spf" neutral "spf: neutral (?all)"
has_sym SPF_NEUTRAL "spf: neutral gives SPF_NEUTRAL"

m=$(msg spf_none a@none.spf.test)
chk spf_none 127.0.0.21 good10.iprev.test a@none.spf.test "$m"
is "$J_spf" none "spf: none (no TXT record)"
has_sym SPF_NONE "spf: none gives SPF_NONE"
m=$(msg spf_nospf a@nospf.spf.test)
chk spf_nospf 127.0.0.21 good10.iprev.test a@nospf.spf.test "$m"
is "$J_spf" none "spf: none (a TXT record that is not SPF)"

for d in permerror unknown multi; do
	m=$(msg "spf_$d" "a@$d.spf.test")
	chk "spf_$d" 127.0.0.20 good10.iprev.test "a@$d.spf.test" "$m"
	is "$J_spf" permerror "spf: permerror for $d.spf.test (syntax / two records)"
	has_sym SPF_PERMERROR "spf: $d.spf.test gives SPF_PERMERROR"
done
verdict accept eom "spf: permerror alone does not reject"

m=$(msg spf_toomany a@toomany.spf.test)
chk spf_toomany 127.0.0.20 good10.iprev.test a@toomany.spf.test "$m"
is "$J_spf" permerror "spf: permerror for 11 DNS terms through includes"
m=$(msg spf_atlimit a@atlimit.spf.test)
chk spf_atlimit 127.0.0.20 good10.iprev.test a@atlimit.spf.test "$m"
is "$J_spf" pass "spf: pass with exactly 10 DNS terms"
m=$(msg spf_void a@void.spf.test)
chk spf_void 127.0.0.20 good10.iprev.test a@void.spf.test "$m"
is "$J_spf" permerror "spf: permerror after 3 void lookups"

m=$(msg spf_include a@include.spf.test)
chk spf_include_pass 127.0.0.20 good10.iprev.test a@include.spf.test "$m"
is "$J_spf" pass "spf: include: pass through the included record"
chk spf_include_fail 127.0.0.21 good10.iprev.test a@include.spf.test "$m"
is "$J_spf" fail "spf: include: no match falls to -all (fail)"
m=$(msg spf_includenone a@includenone.spf.test)
chk spf_includenone 127.0.0.20 good10.iprev.test a@includenone.spf.test "$m"
is "$J_spf" permerror "spf: include of a domain without SPF is permerror"
m=$(msg spf_redirect a@redirect.spf.test)
chk spf_redirect_pass 127.0.0.20 good10.iprev.test a@redirect.spf.test "$m"
is "$J_spf" pass "spf: redirect= pass"
chk spf_redirect_fail 127.0.0.21 good10.iprev.test a@redirect.spf.test "$m"
is "$J_spf" fail "spf: redirect= fail (the target's -all)"
m=$(msg spf_a a@a.spf.test)
chk spf_a 127.0.0.22 good10.iprev.test a@a.spf.test "$m"
is "$J_spf" pass "spf: a mechanism pass"
m=$(msg spf_mx a@mx.spf.test)
chk spf_mx 127.0.0.23 good10.iprev.test a@mx.spf.test "$m"
is "$J_spf" pass "spf: mx mechanism pass"
m=$(msg spf_ip6 a@ip6.spf.test)
chk spf_ip6 ::1 good10.iprev.test a@ip6.spf.test "$m"
is "$J_spf" pass "spf: ip6 mechanism pass from ::1"
like "$J_ar" 'policy\.iprev="::1";' "spf: an IPv6 client is quoted in Authentication-Results"
chk spf_ip6_v4 127.0.0.20 good10.iprev.test a@ip6.spf.test "$m"
is "$J_spf" fail "spf: ip6 mechanism does not match an IPv4 client"
chk spf_mx_fail 127.0.0.22 good10.iprev.test a@mx.spf.test "$m"
is "$J_spf" fail "spf: mx mechanism fail for another client"

# The silent server: temperror; on_dns_error = tempfail defers at MAIL.
for d in temperror temperror-a; do
	m=$(msg "spf_$d" "a@$d.spf.test")
	chk "spf_$d" 127.0.0.20 good10.iprev.test "a@$d.spf.test" "$m"
	is "$J_spf" temperror "spf: temperror for $d.spf.test (silent server)"
	has_sym SPF_TEMPERROR "spf: $d.spf.test gives SPF_TEMPERROR"
	verdict tempfail mail 451 4.4.3 "spf: $d.spf.test: on_dns_error=tempfail defers at MAIL"
done

# HELO identity (RFC 7208 §2.3): checked for every HELO, and used as the
# MAIL FROM identity for the null sender.
m=$(msg spf_helo_null postmaster@helo.spf.test)
chk spf_helo_null_pass 127.0.0.24 helo.spf.test "" "$m"
is "$J_spf/$J_spf_id/$J_spf_domain" "pass/helo/helo.spf.test" "spf: null sender uses the HELO identity (pass)"
has_sym SPF_PASS "spf: null sender HELO pass gives SPF_PASS"
like "$J_ar" $'\tspf=pass \\([^)]*\\) smtp.helo=helo.spf.test;' "spf: Authentication-Results uses smtp.helo for the null sender"
chk spf_helo_null_fail 127.0.0.21 helo.spf.test "" "$m"
is "$J_spf/$J_spf_id" "fail/helo" "spf: null sender from another client: HELO identity fails"
has_sym SPF_FAIL "spf: null sender HELO fail gives SPF_FAIL"
chk spf_helo_fail 127.0.0.20 helofail.spf.test a@pass.spf.test "$(msg spf_helo_fail a@pass.spf.test)"
is "$J_spf_helo/$J_spf" "fail/pass" "spf: HELO identity fails while MAIL FROM passes"
has_sym HELO_SPF_FAIL "spf: a failing HELO identity gives HELO_SPF_FAIL"
chk spf_helo_neutral 127.0.0.26 heloneutral.spf.test a@pass.spf.test "$quiet_msg"
is "$J_spf_helo" neutral "spf: HELO identity neutral"
no_sym_like '^HELO_SPF' "spf: a neutral HELO identity adds no HELO_SPF_ symbol"

# ---- iprev (RFC 8601 §3) -------------------------------------------------

iprev_case() {	# IP RESULT NAME SYMBOL WHAT
	chk "iprev_$1" "$1" good10.iprev.test "$QUIET" "$quiet_msg"
	is "$J_iprev" "$2" "iprev: $1 $5: $2"
	has_sym "$4" "iprev: $1 gives $4"
	[ -n "$3" ] && is "$J_iprev_name" "$3" "iprev: $1 verified name is $3"
}
iprev_case 127.0.0.10 pass good10.iprev.test IPREV_PASS "(PTR and A agree)"
iprev_case 127.0.0.11 fail "" IPREV_FAIL "(A points elsewhere)"
iprev_case 127.0.0.12 permerror "" IPREV_NONE "(no PTR)"
iprev_case 127.0.0.13 pass good13.iprev.test IPREV_PASS "(second PTR name matches)"
iprev_case 127.0.0.15 fail "" IPREV_FAIL "(PTR name does not exist)"
iprev_case 127.0.0.16 fail "" IPREV_FAIL "(PTR name has only AAAA)"
iprev_case 127.0.0.18 pass good17.iprev.test IPREV_PASS "(name with two A records)"
iprev_case 127.0.0.14 temperror "" IPREV_TEMPERROR "(silent server)"
verdict accept eom "iprev: temperror does not defer (score 0)"
chk iprev_ar 127.0.0.10 good10.iprev.test "$QUIET" "$quiet_msg"
is "$J_ar" "$(printf 'mx.mxw.test;\n\tiprev=pass (good10.iprev.test) policy.iprev=127.0.0.10;\n\tspf=none (domain of mx.sender.test does not provide an SPF record) smtp.mailfrom=a@mx.sender.test;\n\tdkim=none;\n\tdmarc=none header.from=mx.sender.test')" \
	"iprev: Authentication-Results for an iprev pass, exact"
is "$J_xss" "No, score=0.7 required=5.0 tests=DKIM_NONE,DMARC_NONE,IPREV_PASS,SPF_NONE" \
	"iprev: X-Spam-Status for a clean message, exact"

# ---- HELO (RFC 5321 §4.1.1.1) --------------------------------------------

chk helo_ok 127.0.0.30 good10.iprev.test "$QUIET" "$quiet_msg"
no_sym_like '^HELO_' "helo: a resolving FQDN adds no HELO_ symbol"
chk helo_bare_ip 127.0.0.30 127.0.0.30 "$QUIET" "$quiet_msg"
has_sym HELO_BARE_IP "helo: a bare IP address gives HELO_BARE_IP"
chk helo_bare_ip6 127.0.0.30 ::1 "$QUIET" "$quiet_msg"
has_sym HELO_BARE_IP "helo: a bare IPv6 address gives HELO_BARE_IP"
chk helo_literal_ok 127.0.0.30 '[127.0.0.30]' "$QUIET" "$quiet_msg"
no_sym_like '^HELO_' "helo: the client's own address literal is fine"
chk helo_literal_bad 127.0.0.30 '[127.0.0.99]' "$QUIET" "$quiet_msg"
has_sym HELO_LITERAL_MISMATCH "helo: another address literal gives HELO_LITERAL_MISMATCH"
chk helo_literal_junk 127.0.0.30 '[not.an.address]' "$QUIET" "$quiet_msg"
has_sym HELO_INVALID "helo: a malformed address literal gives HELO_INVALID"
chk helo_not_fqdn 127.0.0.30 myhost "$QUIET" "$quiet_msg"
has_sym HELO_NOT_FQDN "helo: a single label gives HELO_NOT_FQDN"
chk helo_ours 127.0.0.30 mx.mxw.test "$QUIET" "$quiet_msg"
has_sym HELO_FORGED_OURS "helo: our own host name gives HELO_FORGED_OURS"
chk helo_ours_case 127.0.0.30 MX.MXW.TEST. "$QUIET" "$quiet_msg"
has_sym HELO_FORGED_OURS "helo: our host name in capitals with a root dot too"
chk helo_ours_sub 127.0.0.30 a.mx.mxw.test "$QUIET" "$quiet_msg"
has_sym HELO_FORGED_OURS "helo: a name under our host name too"
chk helo_notours 127.0.0.30 xmx.mxw.test "$QUIET" "$quiet_msg"
lacks_sym HELO_FORGED_OURS "helo: a name that merely ends like ours is not forged"
chk helo_ctrl 127.0.0.30 $'bad\001host.test' "$QUIET" "$quiet_msg"
has_sym HELO_INVALID "helo: a control character gives HELO_INVALID"
chk helo_crlf 127.0.0.30 $'evil.test\r\nX-Injected: yes' "$QUIET" "$quiet_msg"
has_sym HELO_INVALID "helo: CR LF in the name gives HELO_INVALID"
chk helo_timeout 127.0.0.20 x.timeout.fault.test a@pass.spf.test "$(msg helo_timeout a@pass.spf.test)"
is "$J_spf_helo/$J_spf" "temperror/pass" "helo: a silent server for the HELO name: HELO SPF temperror"
verdict accept eom "helo: a HELO lookup failure does not defer a passing MAIL FROM"
chk helo_nx 127.0.0.30 nx.iprev.test "$QUIET" "$quiet_msg"
has_sym HELO_NXDOMAIN "helo: a name that does not exist gives HELO_NXDOMAIN"
verdict accept eom "helo: HELO symbols score, they do not reject alone"

# ---- sender domain (RFC 5321 §5, RFC 7505) --------------------------------

for d in mx aonly aaaaonly; do
	chk "sender_$d" 127.0.0.30 good10.iprev.test "a@$d.sender.test" "$quiet_msg"
	no_sym_like '^SENDER_' "sender: $d.sender.test is fine (no SENDER_ symbol)"
done
chk sender_nullmx 127.0.0.30 good10.iprev.test a@nullmx.sender.test "$quiet_msg"
has_sym SENDER_NULL_MX "sender: null MX gives SENDER_NULL_MX"
verdict reject mail 556 5.1.10 "sender: null MX is rejected at MAIL with 556 5.1.10"
is "$J_decided" SENDER_NULL_MX "sender: the null MX reject is decided by SENDER_NULL_MX"
is "$J_hdrops" "" "sender: a message rejected at MAIL gets no header edits"
chk sender_nomx 127.0.0.30 good10.iprev.test a@nomx.sender.test "$quiet_msg"
has_sym SENDER_NO_MX "sender: no MX, A or AAAA gives SENDER_NO_MX"
verdict accept eom "sender: SENDER_NO_MX only scores"
chk sender_nx 127.0.0.30 good10.iprev.test a@nx.sender.test "$quiet_msg"
has_sym SENDER_NXDOMAIN "sender: a nonexistent domain gives SENDER_NXDOMAIN"
verdict reject mail 550 5.1.8 "sender: a nonexistent domain is rejected at MAIL with 550 5.1.8"
is "$J_text" "Sender address rejected: domain nx.sender.test does not exist" \
	"sender: the reply names the domain"
chk sender_timeout 127.0.0.30 good10.iprev.test a@x.timeout.fault.test "$quiet_msg"
has_sym SENDER_TEMPERROR "sender: a silent server gives SENDER_TEMPERROR"
verdict tempfail mail 451 4.1.8 "sender: a DNS timeout defers at MAIL with 451 4.1.8"
chk sender_servfail 127.0.0.30 good10.iprev.test a@x.servfail.fault.test "$quiet_msg"
verdict tempfail mail 451 4.1.8 "sender: SERVFAIL defers at MAIL with 451 4.1.8"
chk sender_single 127.0.0.30 good10.iprev.test a@localhost "$quiet_msg"
has_sym SENDER_INVALID "sender: a single-label domain gives SENDER_INVALID"
chk sender_literal 127.0.0.30 good10.iprev.test 'a@[127.0.0.1]' "$quiet_msg"
has_sym SENDER_INVALID "sender: an address literal gives SENDER_INVALID"
# RFC 7208 §2.4, §4.3: an address-literal MAIL FROM is not the null
# sender (no HELO identity), and not a domain to look up: SPF "none" for
# the MAIL FROM identity, nothing to defer.
chk sender_literal_spf 127.0.0.30 good10.iprev.test 'a@[127.0.0.1]' "$quiet_msg"
is "$J_spf/$J_spf_id" "none/mailfrom" "sender: an address-literal MAIL FROM: SPF none for the mailfrom identity"
verdict accept eom "sender: an address-literal MAIL FROM is not deferred"
chk sender_null 127.0.0.30 good10.iprev.test "" "$quiet_msg"
no_sym_like '^SENDER_' "sender: the null sender is not a domain to check"
verdict accept eom "sender: the null sender is accepted"

# ---- DKIM (RFC 6376, RFC 8463) -------------------------------------------
# From and MAIL FROM a@dkim.test (SPF passes for 127/8; no DMARC record).

DK=a@dkim.test
base=$(msg dkim_base "$DK")
rsa=$(signed dkim_rsa rsa-sha256 dkim.test rsa "$base")
chk dkim_rsa 127.0.0.20 good10.iprev.test "$DK" "$rsa"
is "$J_dkim/$J_dkim_d/$J_dkim_s/$J_dkim_a" "pass/dkim.test/rsa/rsa-sha256" "dkim: rsa-sha256 (Mail::DKIM) passes"
has_sym DKIM_PASS "dkim: rsa-sha256 pass gives DKIM_PASS"
b=$(bprefix "$rsa")
is "$J_ar" "$(printf 'mx.mxw.test;\n\tiprev=permerror policy.iprev=127.0.0.20;\n\tspf=pass (domain of dkim.test designates 127.0.0.20 as permitted sender) smtp.mailfrom=a@dkim.test;\n\tdkim=pass header.d=dkim.test header.s=rsa header.a=rsa-sha256 header.b=%s;\n\tdmarc=none header.from=dkim.test' "$b")" \
	"dkim: Authentication-Results for a DKIM pass, exact (header.b is b=)"
is "$J_xss" "No, score=1.0 required=5.0 tests=DKIM_PASS,DMARC_NONE,IPREV_NONE,SPF_PASS" \
	"dkim: X-Spam-Status for a DKIM pass, exact"

ed=$(signed dkim_ed ed25519-sha256 dkim.test ed "$base")
chk dkim_ed 127.0.0.20 good10.iprev.test "$DK" "$ed"
is "$J_dkim/$J_dkim_d/$J_dkim_s/$J_dkim_a" "pass/dkim.test/ed/ed25519-sha256" "dkim: ed25519-sha256 (dkimpy) passes"

sed 's/this is the check matrix/this is NOT the check matrix/' "$rsa" >"$MXW_RUN/dkim_body.eml"
chk dkim_body 127.0.0.20 good10.iprev.test "$DK" "$MXW_RUN/dkim_body.eml"
is "$J_dkim" fail "dkim: body altered after signing: fail"
has_sym DKIM_FAIL "dkim: body altered gives DKIM_FAIL"
like "$J_ar" $'\tdkim=fail \\(body hash mismatch\\) header.d=dkim.test header.s=rsa ' \
	"dkim: Authentication-Results says why (body hash mismatch)"
sed 's/^Subject: .*/Subject: changed in transit\r/' "$ed" >"$MXW_RUN/dkim_hdr.eml"
chk dkim_hdr 127.0.0.20 good10.iprev.test "$DK" "$MXW_RUN/dkim_hdr.eml"
is "$J_dkim" fail "dkim: signed header (Subject) altered: fail"
printf 'X-Added: later\r\n' | cat - "$rsa" >"$MXW_RUN/dkim_unsigned.eml"
chk dkim_unsigned 127.0.0.20 good10.iprev.test "$DK" "$MXW_RUN/dkim_unsigned.eml"
is "$J_dkim" pass "dkim: an unsigned header added after signing does not break it"

for sel in revoked nokey tmo; do
	s=$(signed "dkim_$sel" rsa-sha256 dkim.test "$sel" "$base")
	chk "dkim_$sel" 127.0.0.20 good10.iprev.test "$DK" "$s"
	case $sel in
	revoked) is "$J_dkim" fail "dkim: revoked key (empty p=): fail" ;;
	nokey)
		is "$J_dkim" permerror "dkim: missing key (NXDOMAIN): permerror"
		has_sym DKIM_PERMERROR "dkim: missing key gives DKIM_PERMERROR" ;;
	tmo)
		is "$J_dkim" temperror "dkim: key lookup timeout: temperror"
		has_sym DKIM_TEMPERROR "dkim: key timeout gives DKIM_TEMPERROR"
		verdict accept eom "dkim: a key timeout does not defer the message" ;;
	esac
done
s=$(signed dkim_servfail rsa-sha256 servfail.fault.test sel "$base")
chk dkim_servfail 127.0.0.20 good10.iprev.test "$DK" "$s"
is "$J_dkim" temperror "dkim: key lookup SERVFAIL: temperror"
s=$(DKIM_SIGN_EXPIRED=1 signed dkim_expired rsa-sha256 dkim.test rsa "$base")
chk dkim_expired 127.0.0.20 good10.iprev.test "$DK" "$s"
is "$J_dkim" fail "dkim: expired signature (x= in the past): fail"

m=$(msg dkim_garbage "$DK" 'DKIM-Signature: v=1; this is; not a signature')
chk dkim_garbage 127.0.0.20 good10.iprev.test "$DK" "$m"
is "$J_dkim" permerror "dkim: garbage DKIM-Signature: permerror"
has_sym DKIM_PERMERROR "dkim: garbage gives DKIM_PERMERROR"
sed 's/^\(DKIM-Signature:.*\) b=\([A-Za-z0-9+\/]\{10\}\)/\1 b=!!!!\2/' "$rsa" >"$MXW_RUN/dkim_badb64.eml"
chk dkim_badb64 127.0.0.20 good10.iprev.test "$DK" "$MXW_RUN/dkim_badb64.eml"
is "$J_dkim" permerror "dkim: b= that is not base64: permerror"

two=$(signed dkim_two ed25519-sha256 dkim.test ed "$rsa")
chk dkim_two 127.0.0.20 good10.iprev.test "$DK" "$two"
is "$J_dkim/$J_dkim_s" "pass pass/ed rsa" "dkim: two signatures, two results (ed, rsa)"
is "$(grep -o $'\tdkim=pass' <<<"$J_ar" | wc -l)" 2 "dkim: Authentication-Results has one dkim= per signature"
mixed=$(signed dkim_mixed rsa-sha256 dkim.test nokey "$ed")
chk dkim_mixed 127.0.0.20 good10.iprev.test "$DK" "$mixed"
is "$J_dkim" "permerror pass" "dkim: a bad and a good signature are reported each"
has_sym DKIM_PASS "dkim: one good signature still gives DKIM_PASS"
chk dkim_none 127.0.0.20 good10.iprev.test "$DK" "$base"
is "$J_dkim" "" "dkim: no signature, no per-signature result"
has_sym DKIM_NONE "dkim: no signature gives DKIM_NONE"

# ---- DMARC (RFC 7489) ------------------------------------------------------
# Every dmarc.test name: SPF passes from 127.0.0.20 only; selectors rsa, ed.

dm() {	# NAME IP FROMDOMAIN MAILFROMDOMAIN [SIGNDOMAIN]
	local m
	m=$(msg "$1.base" "a@$3")
	[ -n "${5:-}" ] && m=$(signed "$1" rsa-sha256 "$5" rsa "$m")
	chk "$1" "$2" good10.iprev.test "a@$4" "$m"
}
dm dmarc_reject 127.0.0.21 reject.dmarc.test reject.dmarc.test
is "$J_dmarc/$J_dmarc_policy" "fail/reject" "dmarc: p=reject, SPF fails, no DKIM: fail"
has_sym DMARC_FAIL_REJECT "dmarc: p=reject fail gives DMARC_FAIL_REJECT"
verdict reject eom 550 5.7.26 "dmarc: p=reject fail is rejected at end of message with 550 5.7.26"
is "$J_text" "Unauthenticated email from reject.dmarc.test is not accepted due to domain's DMARC policy" \
	"dmarc: the reject text names the From domain"
is "$J_hdrops" "" "dmarc: a rejected message gets no header edits"

dm dmarc_quarantine 127.0.0.21 quarantine.dmarc.test quarantine.dmarc.test
is "$J_dmarc/$J_dmarc_policy" "fail/quarantine" "dmarc: p=quarantine fail"
has_sym DMARC_FAIL_QUARANTINE "dmarc: p=quarantine gives DMARC_FAIL_QUARANTINE"
verdict quarantine eom "dmarc: p=quarantine quarantines at end of message"
is "$J_ar" "$(printf 'mx.mxw.test;\n\tiprev=permerror policy.iprev=127.0.0.21;\n\tspf=fail (domain of quarantine.dmarc.test does not designate 127.0.0.21 as permitted sender) smtp.mailfrom=a@quarantine.dmarc.test;\n\tdkim=none;\n\tdmarc=fail (p=quarantine dis=quarantine) header.from=quarantine.dmarc.test')" \
	"dmarc: Authentication-Results for a quarantined message, exact"
is "$J_xss" "Yes, score=9.2 required=5.0 tests=DKIM_NONE,DMARC_FAIL_QUARANTINE,IPREV_NONE,SPF_FAIL" \
	"dmarc: X-Spam-Status for a quarantined message, exact"

dm dmarc_none 127.0.0.21 none.dmarc.test none.dmarc.test
is "$J_dmarc/$J_dmarc_policy" "fail/none" "dmarc: p=none fail"
has_sym DMARC_FAIL_NONE "dmarc: p=none gives DMARC_FAIL_NONE"
verdict accept eom "dmarc: p=none is accepted"
like "$J_ar" $'\tdmarc=fail \\(p=none dis=none\\) header.from=none.dmarc.test$' "dmarc: p=none: Authentication-Results says dmarc=fail"

dm dmarc_spf 127.0.0.20 reject.dmarc.test reject.dmarc.test
is "$J_dmarc" pass "dmarc: pass via aligned SPF (no DKIM)"
has_sym DMARC_PASS "dmarc: pass gives DMARC_PASS"
verdict accept eom "dmarc: pass is accepted"
like "$J_ar" $'\tdmarc=pass \\(p=reject dis=none\\) header.from=reject.dmarc.test$' "dmarc: Authentication-Results says dmarc=pass with p=reject"
dm dmarc_spf_relaxed 127.0.0.20 reject.dmarc.test sub.dmarc.test
is "$J_dmarc" pass "dmarc: pass via relaxed SPF alignment (MAIL FROM a sibling)"
dm dmarc_dkim 127.0.0.21 reject.dmarc.test reject.dmarc.test reject.dmarc.test
is "$J_spf/$J_dkim/$J_dmarc" "fail/pass/pass" "dmarc: pass via aligned DKIM while SPF fails"
verdict accept eom "dmarc: DKIM-aligned pass is accepted"
dm dmarc_dkim_relaxed 127.0.0.21 reject.dmarc.test reject.dmarc.test sub.dmarc.test
is "$J_dmarc" pass "dmarc: pass via relaxed DKIM alignment (d= a sibling)"
dm dmarc_dkim_foreign 127.0.0.21 reject.dmarc.test reject.dmarc.test dkim.test
is "$J_dkim/$J_dmarc" "pass/fail" "dmarc: a valid but unaligned DKIM signature does not pass"

dm dmarc_strict_spf 127.0.0.20 strict.dmarc.test sub.dmarc.test
is "$J_spf/$J_dmarc" "pass/fail" "dmarc: aspf=s: SPF of a sibling does not align"
verdict reject eom 550 5.7.26 "dmarc: strict SPF misalignment under p=reject is rejected"
dm dmarc_strict_dkim 127.0.0.21 strict.dmarc.test strict.dmarc.test sub.dmarc.test
is "$J_dkim/$J_dmarc" "pass/fail" "dmarc: adkim=s: d= a sibling does not align"
dm dmarc_strict_ok 127.0.0.21 strict.dmarc.test strict.dmarc.test strict.dmarc.test
is "$J_dmarc" pass "dmarc: adkim=s: d= the From domain itself passes"

dm dmarc_sp 127.0.0.21 sub.dmarc.test sub.dmarc.test
is "$J_dmarc/$J_dmarc_policy" "fail/reject" "dmarc: a subdomain without a record gets the org's sp=reject"
verdict reject eom 550 5.7.26 "dmarc: sp=reject rejects the subdomain"
dm dmarc_org 127.0.0.21 dmarc.test dmarc.test
is "$J_dmarc/$J_dmarc_policy" "fail/none" "dmarc: the org domain itself gets p=none"
verdict accept eom "dmarc: the org domain's p=none is accepted"

dm dmarc_pct0 127.0.0.21 pct0.dmarc.test pct0.dmarc.test
is "$J_dmarc" fail "dmarc: pct=0: still a fail"
lacks_sym DMARC_FAIL_REJECT "dmarc: pct=0: p=reject is never applied"
has_sym DMARC_FAIL_QUARANTINE "dmarc: pct=0: quarantine instead (RFC 7489 §6.6.4)"
verdict quarantine eom "dmarc: pct=0 quarantines instead of rejecting"
dm dmarc_pct100 127.0.0.21 pct100.dmarc.test pct100.dmarc.test
verdict quarantine eom "dmarc: pct=100 p=quarantine quarantines"

dm dmarc_bad 127.0.0.21 bad.dmarc.test bad.dmarc.test
is "$J_dmarc" permerror "dmarc: p=bogus: permerror"
has_sym DMARC_PERMERROR "dmarc: p=bogus gives DMARC_PERMERROR"
verdict accept eom "dmarc: permerror does not reject"
dm dmarc_nodmarc 127.0.0.21 dkim.test dkim.test
is "$J_dmarc" none "dmarc: no record anywhere: none"
has_sym DMARC_NONE "dmarc: no record gives DMARC_NONE"
# RFC 7489 §6.6.1: no single author domain. Not a pass, not a none.
m=$(msg dmarc_twofrom.base a@pass.spf.test 'From: <a@reject.dmarc.test>')
chk dmarc_twofrom 127.0.0.21 good10.iprev.test a@pass.spf.test "$m"
is "$J_dmarc" permerror "dmarc: two From headers: permerror"
has_sym DMARC_PERMERROR "dmarc: two From headers give DMARC_PERMERROR"
has_sym FROM_MULTIPLE "dmarc: two From headers give FROM_MULTIPLE"
verdict reject eom 550 5.7.1 "dmarc: two From headers are rejected (a way around p=reject)"
printf 'From: a@pass.spf.test, b@reject.dmarc.test\r\nSubject: x\r\n\r\nbody\r\n' \
	>"$MXW_RUN/dmarc_twoaddr.eml"
chk dmarc_twoaddr 127.0.0.21 good10.iprev.test a@pass.spf.test "$MXW_RUN/dmarc_twoaddr.eml"
is "$J_dmarc" permerror "dmarc: two addresses in one From: permerror"
verdict reject eom 550 5.7.1 "dmarc: two addresses in one From are rejected"
printf 'Subject: no author\r\n\r\nbody\r\n' >"$MXW_RUN/dmarc_nofrom.eml"
chk dmarc_nofrom 127.0.0.21 good10.iprev.test a@pass.spf.test "$MXW_RUN/dmarc_nofrom.eml"
is "$J_dmarc" permerror "dmarc: no From header: permerror"
# From forms that must not hide the author domain from DMARC.
i=0
for f in '"Evil, Inc" <a@reject.dmarc.test>' 'a@reject.dmarc.test (Evil, Inc)' \
    '"a@pass.spf.test" <a@reject.dmarc.test>' 'A@REJECT.DMARC.TEST' \
    $'\r\n <a@reject.dmarc.test>'; do
	i=$((i + 1))
	printf 'From: %s\r\nSubject: x\r\n\r\nbody\r\n' "$f" >"$MXW_RUN/dmarc_form$i.eml"
	chk "dmarc_form$i" 127.0.0.21 good10.iprev.test a@pass.spf.test "$MXW_RUN/dmarc_form$i.eml"
	is "$J_dmarc_from/$J_dmarc/$J_action" "reject.dmarc.test/fail/reject" \
		"dmarc: From form $i ($(printf '%q' "$f")) is evaluated for reject.dmarc.test"
done
chk dmarc_timeout 127.0.0.21 good10.iprev.test "$QUIET" "$(msg dmarc_timeout a@x.timeout.fault.test)"
is "$J_dmarc" temperror "dmarc: the record lookup times out: temperror"
verdict tempfail eom 451 4.4.3 "dmarc: a DMARC timeout defers (on_dns_error=tempfail)"

# ---- Authentication-Results from outside (RFC 8601 §5) ------------------

m=$(msg ar_forged "$QUIET" \
	'Authentication-Results: mx.mxw.test; spf=pass smtp.mailfrom=forged@mx.sender.test' \
	'Authentication-Results: other.example; dkim=pass header.d=example.org' \
	'Authentication-Results: (comment) MX.MXW.TEST; dkim=pass' \
	'Authentication-Results: "mx.mxw.test"; dmarc=pass' \
	'Authentication-Results: mx.mxw.test.evil.example; spf=pass' \
	'X-Spam-Status: No, score=-100 tests=FORGED' \
	'X-Spam-Flag: NO')
chk ar_forged 127.0.0.10 good10.iprev.test "$QUIET" "$m"
verdict accept eom "authres: a message with foreign verdicts is accepted"
like " $J_hdrops " " delete:Authentication-Results:1 " "authres: ours (plain) is removed"
like " $J_hdrops " " delete:Authentication-Results:3 " "authres: ours (after a comment, in capitals) is removed"
like " $J_hdrops " " delete:Authentication-Results:4 " "authres: ours (quoted) is removed"
unlike " $J_hdrops " " delete:Authentication-Results:2 " "authres: a foreign authserv-id is kept"
unlike " $J_hdrops " " delete:Authentication-Results:5 " "authres: a longer id that starts like ours is kept"
like " $J_hdrops " " delete:X-Spam-Status:1 " "authres: an incoming X-Spam-Status is removed"
like " $J_hdrops " " delete:X-Spam-Flag:1 " "authres: an incoming X-Spam-Flag is removed"
like " $J_hdrops " " insert:Authentication-Results:0 " "authres: ours is inserted at the top"
like "$J_ar" '^mx\.mxw\.test;' "authres: the inserted header carries our authserv-id"

# Peer text in Authentication-Results is quoted, never raw syntax.
chk ar_inject 127.0.0.30 $'evil.test; spf=pass\r\n\tX: y' "" "$quiet_msg"
unlike "$J_ar" $'\r|\n[^\t]|\nX' "authres: a hostile HELO cannot add lines to Authentication-Results"

# ---- bad input: defined results, never a crash ---------------------------

i=0
for from in 'a@@b.test' '<a@mx.sender.test' 'no-at-sign' 'a@' '@mx.sender.test' \
    'a@[300.1.1.1]' 'a@-bad-.sender.test' 'a@mx..sender.test' \
    "$(printf 'a@mx.sender.test\001x')" "a@$(head -c 400 /dev/zero | tr '\0' a).test" \
    "$(head -c 5000 /dev/zero | tr '\0' x)@mx.sender.test" '"quoted local"@mx.sender.test'; do
	i=$((i + 1))
	chk "input_from$i" 127.0.0.30 good10.iprev.test "$from" "$quiet_msg"
	defined "input_from$i" "MAIL FROM $(printf '%q' "${from:0:40}")"
done
for from in 'a@@mx.sender.test' 'no-at-sign' 'a@mx..sender.test' \
    "$(head -c 1000 /dev/zero | tr '\0' x)@mx.sender.test" \
    "$(head -c 5000 /dev/zero | tr '\0' x)@mx.sender.test" 'a@[300.1.1.1]'; do
	chk input_from_syntax 127.0.0.30 good10.iprev.test "$from" "$quiet_msg"
	what="input: MAIL FROM $(printf '%q' "${from:0:20}")"
	has_sym MAIL_MALFORMED "$what gives MAIL_MALFORMED"
	lacks_sym SENDER_NXDOMAIN "$what is not looked up as a sender domain"
	is "$J_spf/$J_spf_id" "none/mailfrom" "$what: SPF none for the mailfrom identity (not HELO)"
	verdict accept eom "$what is scored, not deferred"
done

# The fault server (tests/dns/README.md): truncated, oversized, garbage
# and malformed answers end in a temporary failure at MAIL, never in a
# crash or a permanent reject; 200 TXT records are a valid answer.
for f in huge many tc garbage badrdata refused; do
	chk "input_fault_$f" 127.0.0.30 good10.iprev.test "a@$f.fault.test" \
		"$(msg "input_fault_$f" "a@$f.fault.test")"
	defined "input_fault_$f" "MAIL FROM a@$f.fault.test"
	case $f in
	huge)
		is "$J_spf" temperror "input: 300 TXT records (over the limit): SPF temperror"
		verdict tempfail mail 451 4.4.3 "input: huge answer defers at MAIL" ;;
	many)
		is "$J_spf" none "input: 200 TXT records, none SPF: SPF none"
		verdict accept eom "input: 200 TXT records are a valid answer" ;;
	*)
		has_sym SENDER_TEMPERROR "input: $f.fault.test gives SENDER_TEMPERROR"
		verdict tempfail mail 451 4.1.8 "input: $f.fault.test defers at MAIL with 451 4.1.8" ;;
	esac
done
chk input_fault_dmarc 127.0.0.20 good10.iprev.test a@pass.spf.test \
	"$(msg input_fault_dmarc a@huge.fault.test)"
is "$J_dmarc" temperror "input: a 300-record _dmarc answer: DMARC temperror"
verdict tempfail eom 451 4.4.3 "input: the DMARC lookup failure defers at end of message"
chk input_fault_huge_key 127.0.0.20 good10.iprev.test "$DK" \
	"$(signed input_fault_dkim rsa-sha256 huge.fault.test x "$base")"
defined input_fault_huge_key "a DKIM key of 300 TXT records"
is "$J_dkim" permerror "input: a 300-record DKIM key answer is permerror (malformed)"

# A message that is not one: no header section, NULs, bare CRs.
printf '\0\0\0\r\r\n\n\r\nno header here\r\n' >"$MXW_RUN/input_junk.eml"
chk input_junk 127.0.0.30 good10.iprev.test "$QUIET" "$MXW_RUN/input_junk.eml"
defined input_junk "a message of NULs and bare CRs"
head -c 200000 /dev/zero | tr '\0' 'h' >"$MXW_RUN/input_longhdr.eml"
printf ': x\r\n\r\nbody\r\n' >>"$MXW_RUN/input_longhdr.eml"
chk input_longhdr 127.0.0.30 good10.iprev.test "$QUIET" "$MXW_RUN/input_longhdr.eml"
defined input_longhdr "a 200 kB header name"

# Every run above, whatever it asserted: exit 0/1/2 and no sanitizer
# report (a leak under MXW_BUILD=build-san changes the exit status).
if [ ${#BAD_RUNS[@]} -eq 0 ] && [ "$N_RUNS" -gt 100 ]; then
	ok "input: all $N_RUNS check runs ended cleanly"
else
	not_ok "input: all $N_RUNS check runs ended cleanly" "${BAD_RUNS[@]}"
fi

done_testing
