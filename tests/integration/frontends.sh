#!/usr/bin/env bash
# frontends.sh - one table of verdict cases run through both front
# ends: the milter (a private Postfix calling mxwarden as its milter)
# and the SMTP proxy (mxwarden proxy in front of a second private
# Postfix, XCLIENT authorized). Each case sends the very same message
# file both ways and asserts that the client gets the same reply (the
# queue id aside), that the reply is the one the case expects, and that
# the accepted copy carries the same Authentication-Results and
# X-Spam-Status on both paths.
#
# Cases: SPF pass/fail, DKIM pass/fail (signed at test time with
# tests/dkim/sign), DMARC reject (550 5.7.26), quarantine (on hold in
# both Postfix queues), p=none and an aligned DKIM pass, iprev
# pass/fail, HELO symbols, sender null MX (556 5.1.10), nonexistent
# (550 5.1.8) and a DNS timeout (451 4.1.8). Test data: the comment
# blocks of tests/dns/zones/*.zone and tests/dkim/dmarc.test.zone.in.
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=frontends

mxw_require "to run a private Postfix" postfix postcat smtp-sink swaks /usr/bin/python3
/usr/bin/python3 -c 'import dkim' 2>/dev/null || skip_all "python3-dkim missing"
/usr/bin/perl -MMail::DKIM::Signer -e 1 2>/dev/null ||
	skip_all "libmail-dkim-perl missing"
mxw_rundir
. "$MXW_TOP/tests/integration/proxy/common.sh"

# ---- set-up: keys, DNS, two Postfix instances, milter, proxy ----
if ! sh "$MXW_TOP/tests/dkim/keys" "$MXW_RUN" >"$MXW_RUN/keys.log" 2>&1; then
	not_ok "DKIM test keys" "$(tail "$MXW_RUN/keys.log")"; done_testing
fi
if ! start_dns "$MXW_RUN"; then
	not_ok "test DNS starts"; done_testing
fi
# Both backends hold what the proxy marks for quarantine; the milter
# path holds through the milter protocol instead.
echo '/^X-Mxwarden-Quarantine: yes$/ HOLD quarantined by mxwarden' >"$MXW_RUN/hold.re"
PF_EXTRA_MAIN="smtpd_authorized_xclient_hosts = 127.0.0.1
header_checks = regexp:$MXW_RUN/hold.re"

if ! start_mxwarden "$MXW_RUN"; then
	not_ok "mxwarden milter starts" "$(tail -20 "$MXW_RUN/mxwarden.log")"; done_testing
fi
mkdir -p "$MXW_RUN/m" "$MXW_RUN/p"
if ! start_sink "$MXW_RUN/m" || ! start_postfix "$MXW_RUN/m" "$MXW_MILTER"; then
	not_ok "milter path: Postfix and sink start"; done_testing
fi
M_SINK_DIR=$SINK_DIR M_SMTP=$SMTP_PORT M_QUEUE=$PF_QUEUE M_CONF=$PF_CONF
if ! start_sink "$MXW_RUN/p" || ! start_postfix "$MXW_RUN/p" ""; then
	not_ok "proxy path: Postfix and sink start"; done_testing
fi
P_SINK_DIR=$SINK_DIR P_QUEUE=$PF_QUEUE P_CONF=$PF_CONF
if ! start_proxy px "127.0.0.1:$SMTP_PORT"; then
	not_ok "proxy starts" "$(tail -20 "$MXW_RUN/px/mxwarden.log")"; done_testing
fi
ok "milter (Postfix + mxwarden) and proxy (mxwarden + Postfix) paths start"

# ---- helpers ----

# use_path m|p - point lib.sh's sink and queue helpers at one path.
use_path() {
	if [ "$1" = m ]; then
		SINK_DIR=$M_SINK_DIR PF_QUEUE=$M_QUEUE PF_CONF=$M_CONF SMTP_PORT=$M_SMTP
	else
		SINK_DIR=$P_SINK_DIR PF_QUEUE=$P_QUEUE PF_CONF=$P_CONF
	fi
}

# held_headers QID - headers of the held message QID (postcat), in a file.
held_headers() {
	local f=$MXW_RUN/held.$1.txt i
	for ((i = 0; i < 50; i++)); do
		[ -f "$PF_QUEUE/hold/$1" ] && break
		sleep 0.2
	done
	PATH=$PATH:/usr/sbin postcat -c "$PF_CONF" -h -q "$1" 2>/dev/null |
		sed 's/$/\r/' >"$f"
	echo "$f"
}

# one_path m|p NAME IP HELO FROM FILE HOLD - send FILE one way. Sets
# R (reply, queue id replaced by QID; the byte count Postfix puts in its
# reply to the proxy's BDAT dropped), AR, XS, XF (from the delivered or
# held copy; empty when none), WHERE (sink, hold, none).
one_path() {
	local p=$1 name=$2 ip=$3 helo=$4 from=$5 file=$6 hold=$7 n0 raw qid d
	use_path "$p"
	n0=$(delivered_count)
	if [ "$p" = m ]; then
		raw=$(send_mail "$ip" "$helo" "$from" u@local.test "$file")
	else
		raw=$(pmail "$ip" "$helo" "$from" u@local.test "$file")
	fi
	R=$(printf '%s' "$raw" | sed -E 's/Ok: [0-9]+ bytes queued/Ok: queued/;
		s/queued as [0-9A-Za-z]+/queued as QID/')
	AR='' XS='' XF='' WHERE=none
	[[ $raw == 250* ]] || return 0
	qid=${raw##* }
	if [ "$hold" = hold ]; then
		d=$(held_headers "$qid")
		[ -s "$d" ] && WHERE=hold
	elif wait_delivered $((n0 + 1)) 20; then
		d=$(delivered_file $((n0 + 1)))
		WHERE=sink
	fi
	if [ "$WHERE" != none ]; then
		AR=$(header_of "$d" Authentication-Results)
		XS=$(header_of "$d" X-Spam-Status)
		XF=$(header_of "$d" X-Spam-Flag)
	fi
}

# fe_case NAME IP HELO FROM FILE REPLY_RE [AR_RE] [XS_RE] [hold] -
# FILE through both paths; both replies match REPLY_RE and are equal;
# for an accepted message both copies are where they belong (the sink,
# or the hold queue with "hold"), their A-R and X-Spam-Status are
# equal, and the milter's match AR_RE / XS_RE.
fe_case() {
	local name=$1 ip=$2 helo=$3 from=$4 file=$5 want=$6 arre=${7:-} xsre=${8:-}
	local hold=${9:-} mr mar mxs mxf mwhere mn0 pn0
	use_path m
	mn0=$(delivered_count)
	one_path m "$name" "$ip" "$helo" "$from" "$file" "$hold"
	mr=$R mar=$AR mxs=$XS mxf=$XF mwhere=$WHERE
	use_path p
	pn0=$(delivered_count)
	one_path p "$name" "$ip" "$helo" "$from" "$file" "$hold"
	like "$mr" "$want" "$name: milter path replies as expected"
	is "$R" "$mr" "$name: proxy path gives the same reply"
	if [[ $mr != 250* ]]; then
		sleep 0.5
		use_path m
		mn0="$(delivered_count)/$mn0"
		use_path p
		is "$mn0 $(delivered_count)/$pn0" "${mn0#*/}/${mn0#*/} $pn0/$pn0" \
			"$name: refused message delivered by neither path"
		return
	fi
	local want_where=sink
	[ "$hold" = hold ] && want_where=hold
	is "$mwhere/$WHERE" "$want_where/$want_where" "$name: both copies are in the $want_where"
	[ -n "$arre" ] && like "$mar" "$arre" "$name: Authentication-Results as expected (milter)"
	[ -n "$xsre" ] && like "$mxs" "$xsre" "$name: X-Spam-Status as expected (milter)"
	if [ -n "$mar" ]; then
		is "$AR" "$mar" "$name: same Authentication-Results both ways"
	else
		not_ok "$name: same Authentication-Results both ways" "milter copy has none"
	fi
	is "$XS" "$mxs" "$name: same X-Spam-Status both ways"
	is "$XF" "$mxf" "$name: same X-Spam-Flag both ways"
}

# msg NAME FROM - a message file with From FROM (CRLF).
msg() { mail_file "$1" "From: <$2>" "To: <u@local.test>" "Subject: frontends $1"; }

# signed NAME ALG DOMAIN SELECTOR IN - IN signed into $MXW_RUN/NAME.eml.
signed() {
	local f=$MXW_RUN/$1.eml
	sh "$MXW_TOP/tests/dkim/sign" "$MXW_RUN" "$2" "$3" "$4" <"$5" >"$f" \
		2>"$MXW_RUN/$1.sign.err" || diag "signing $1 failed: $(cat "$MXW_RUN/$1.sign.err")"
	echo "$f"
}

H=good10.iprev.test
Q250='^250 2\.0\.0 Ok: queued as QID$'
IPNONE='iprev=permerror policy\.iprev=127\.0\.0\.[0-9]+'

# ---- the table ----

# SPF
fe_case spf_pass 127.0.0.20 $H a@pass.spf.test "$(msg spf_pass a@pass.spf.test)" "$Q250" \
	"^mx\.mxw\.test;	$IPNONE;	spf=pass \(domain of pass\.spf\.test designates 127\.0\.0\.20 as permitted sender\) smtp\.mailfrom=a@pass\.spf\.test;	dkim=none;	dmarc=none header\.from=pass\.spf\.test$" \
	'^No, .*tests=DKIM_NONE,DMARC_NONE,IPREV_NONE,SPF_PASS$'
fe_case spf_fail 127.0.0.21 $H a@pass.spf.test "$(msg spf_fail a@pass.spf.test)" "$Q250" \
	'	spf=fail \(domain of pass\.spf\.test does not designate 127\.0\.0\.21 as permitted sender\) smtp\.mailfrom=a@pass\.spf\.test;' \
	'^Yes, .*SPF_FAIL'

# DKIM (From and MAIL FROM a@dkim.test: SPF passes for 127/8)
base=$(msg dkim_base a@dkim.test)
rsa=$(signed dkim_rsa rsa-sha256 dkim.test rsa "$base")
fe_case dkim_rsa_pass 127.0.0.20 $H a@dkim.test "$rsa" "$Q250" \
	'	dkim=pass header\.d=dkim\.test header\.s=rsa header\.a=rsa-sha256 header\.b=[A-Za-z0-9+/]{8};' \
	'tests=DKIM_PASS,'
ed=$(signed dkim_ed ed25519-sha256 dkim.test ed "$base")
fe_case dkim_ed_pass 127.0.0.20 $H a@dkim.test "$ed" "$Q250" \
	'	dkim=pass header\.d=dkim\.test header\.s=ed header\.a=ed25519-sha256 '
sed 's/^Test body line/Altered body line/' "$rsa" >"$MXW_RUN/dkim_body.eml"
fe_case dkim_fail_body 127.0.0.20 $H a@dkim.test "$MXW_RUN/dkim_body.eml" "$Q250" \
	'	dkim=fail \(body hash mismatch\) header\.d=dkim\.test header\.s=rsa ' 'tests=DKIM_FAIL,'
sed 's/^Subject: .*/Subject: changed in transit\r/' "$rsa" >"$MXW_RUN/dkim_hdr.eml"
fe_case dkim_fail_header 127.0.0.20 $H a@dkim.test "$MXW_RUN/dkim_hdr.eml" "$Q250" \
	'	dkim=fail( \([^)]*\))? header\.d=dkim\.test header\.s=rsa '

# DMARC (SPF passes from 127.0.0.20 only)
fe_case dmarc_reject 127.0.0.21 $H a@reject.dmarc.test "$(msg dmarc_reject a@reject.dmarc.test)" \
	"^550 5\.7\.26 Unauthenticated email from reject\.dmarc\.test is not accepted due to domain's DMARC policy$"
fe_case dmarc_quarantine 127.0.0.21 $H a@quarantine.dmarc.test \
	"$(msg dmarc_quarantine a@quarantine.dmarc.test)" "$Q250" \
	'	dmarc=fail \(p=quarantine dis=quarantine\) header\.from=quarantine\.dmarc\.test$' \
	'DMARC_FAIL_QUARANTINE' hold
fe_case dmarc_none 127.0.0.21 $H a@none.dmarc.test "$(msg dmarc_none a@none.dmarc.test)" "$Q250" \
	'	dmarc=fail \(p=none dis=none\) header\.from=none\.dmarc\.test$' 'DMARC_FAIL_NONE'
dk=$(signed dmarc_dkim rsa-sha256 reject.dmarc.test rsa "$(msg dmarc_dkim_base a@reject.dmarc.test)")
fe_case dmarc_dkim_pass 127.0.0.21 $H a@reject.dmarc.test "$dk" "$Q250" \
	'	dkim=pass header\.d=reject\.dmarc\.test .*	dmarc=pass \(p=reject dis=none\) header\.from=reject\.dmarc\.test$' \
	'DMARC_PASS'

# iprev (sender a@mx.sender.test: exists, no SPF, no DMARC)
QM=$(msg quiet a@mx.sender.test)
fe_case iprev_pass 127.0.0.10 $H a@mx.sender.test "$QM" "$Q250" \
	'^mx\.mxw\.test;	iprev=pass \(good10\.iprev\.test\) policy\.iprev=127\.0\.0\.10;' 'IPREV_PASS'
fe_case iprev_fail 127.0.0.11 $H a@mx.sender.test "$QM" "$Q250" \
	'^mx\.mxw\.test;	iprev=fail \(bad11\.iprev\.test\) policy\.iprev=127\.0\.0\.11;' 'IPREV_FAIL'

# HELO symbols
fe_case helo_bare_ip 127.0.0.30 127.0.0.30 a@mx.sender.test "$QM" "$Q250" '' 'HELO_BARE_IP'
fe_case helo_not_fqdn 127.0.0.30 myhost a@mx.sender.test "$QM" "$Q250" '' 'HELO_NOT_FQDN'
fe_case helo_forged_ours 127.0.0.30 mx.mxw.test a@mx.sender.test "$QM" "$Q250" '' 'HELO_FORGED_OURS'
fe_case helo_nxdomain 127.0.0.30 nx.iprev.test a@mx.sender.test "$QM" "$Q250" '' 'HELO_NXDOMAIN'

# sender domain
fe_case sender_null_mx 127.0.0.20 $H a@nullmx.sender.test "$QM" \
	'^556 5\.1\.10 Sender address rejected: domain does not accept mail \(null MX\)$'
fe_case sender_nxdomain 127.0.0.20 $H a@nx.sender.test "$QM" \
	'^550 5\.1\.8 Sender address rejected: domain nx\.sender\.test does not exist$'
fe_case sender_timeout 127.0.0.20 $H a@x.timeout.fault.test "$QM" '^451 4\.1\.8 '

# ---- the end: both daemons stop cleanly ----
stop_pid "$PROXY_PID" 20
is "$MXW_STOP_STATUS" 0 "proxy stops cleanly on SIGTERM"
stop_pid "$MXW_PID" 20
is "$MXW_STOP_STATUS" 0 "milter stops cleanly on SIGTERM"
if grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' \
	"$MXW_RUN/mxwarden.log" "$MXW_RUN/px/mxwarden.log" >/dev/null; then
	not_ok "no sanitizer report" "$(grep -h -A10 -E 'Sanitizer|runtime error' \
		"$MXW_RUN/mxwarden.log" "$MXW_RUN/px/mxwarden.log" | head -30)"
else
	ok "no sanitizer report"
fi
done_testing
