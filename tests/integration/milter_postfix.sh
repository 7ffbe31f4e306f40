#!/usr/bin/env bash
# milter_postfix.sh - mail through a private Postfix with the milter
# front end, captured by smtp-sink.
#
# Part 1: the harness alone (Postfix + sink + swaks, no milter).
# Part 2: Postfix -> filter/milter.c over a scripted engine
#         (tests/tools/milter_stub): replies, header edits, quarantine,
#         discard, what Postfix tells the milter.
# Part 3: Postfix -> mxwarden with the test DNS: the smoke test
#         (Authentication-Results, X-Spam-Status, forged A-R removal, a
#         rule-file reject). Skipped while mxwarden is not built.
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=milter_postfix

[ "$(id -u)" = 0 ] || skip_all "needs root to run a private Postfix"
for t in postfix smtp-sink swaks; do
	PATH=$PATH:/usr/sbin command -v $t >/dev/null ||
		skip_all "$t not installed (contrib/install-deps.sh test)"
done
mxw_rundir

# ---- part 1: the harness itself ----

part1() {
	local run=$MXW_RUN/p1 f r d
	mkdir -p "$run"
	if ! start_sink "$run" || ! start_postfix "$run" ""; then
		not_ok "harness: Postfix and sink start"
		return
	fi
	ok "harness: Postfix and sink start"
	f=$(mail_file p1 "From: <a@sender.test>" "To: <u@local.test>" \
		"Subject: harness check")
	r=$(send_mail 127.0.0.5 client.test a@sender.test u@local.test "$f")
	like "$r" '^250 2\.0\.0 Ok: queued as ' "harness: message accepted"
	if wait_delivered 1; then
		ok "harness: message reaches the sink"
	else
		not_ok "harness: message reaches the sink" "$(tail -5 "$run/postfix.log")"
		return
	fi
	d=$(delivered_file 1)
	is "$(header_of "$d" Subject)" "harness check" "harness: header_of"
	like "$(header_of "$d" Received 2)" 'from client\.test \(unknown \[127\.0\.0\.5\]\)' \
		"harness: client 127.0.0.5, no reverse lookup"
	r=$(send_mail 127.0.0.5 client.test a@sender.test u@elsewhere.test "$f")
	like "$r" '^554 5\.7\.1 .*Relay access denied' "harness: not an open relay"
	stop_postfix "$PF_QUEUE"
}

# ---- part 2: Postfix -> milter front end over the scripted engine ----

# stub_send NAME FROM_IP HELO MAILFROM RCPT [HEADER...] - send a message;
# prints the reply.
stub_send() {
	local name=$1 ip=$2 helo=$3 from=$4 rcpt=$5 f
	shift 5
	f=$(mail_file "$name" "From: <$from>" "To: <$rcpt>" "Subject: $name" "$@")
	send_mail "$ip" "$helo" "$from" "$rcpt" "$f"
}

# trace_of QID - the stub's session id for the message Postfix queued
# as QID (from the "eom qid=" line).
trace_sid() {
	awk -v q="qid=$1" '$2 == "eom" && $3 == q { print $1; exit }' "$MXW_STUB_TRACE"
}

part2_accept() {
	local r d qid sid
	r=$(stub_send accept 127.0.0.7 client.test ok@sender.test u@local.test \
		"Authentication-Results: mx.mxw.test; spf=pass smtp.mailfrom=forged.test" \
		"Authentication-Results: other.test; spf=fail" \
		"Authentication-Results: MX.MXW.TEST;" \
		"  dkim=pass header.d=forged.test" \
		"X-Spaced:   three spaces" \
		"X-Folded: first" \
		"	second")
	like "$r" '^250 2\.0\.0 Ok: queued as ' "stub: plain message accepted"
	qid=${r##* }
	wait_delivered 1 || { not_ok "stub: delivered" "$(tail "$MXW_RUN/p2/postfix.log")"; return; }
	ok "stub: delivered"
	d=$(delivered_file 1)
	is "$(header_count "$d" Authentication-Results)" 2 \
		"stub: two A-R left (ours + other.test)"
	is "$(header_of "$d" Authentication-Results 1)" "mx.mxw.test;	stub=pass" \
		"stub: our A-R inserted first, folding kept"
	is "$(header_of "$d" Authentication-Results 2)" "other.test; spf=fail" \
		"stub: A-R of another authserv-id kept"
	unlike "$(cat "$d")" 'forged\.test' "stub: both forged A-R (any case) removed"
	is "$(header_of "$d" X-Spam-Status)" "No, score=0.0 required=5.0 tests=STUB_ENGINE" \
		"stub: X-Spam-Status added"
	like "$(header_of "$d" X-Stub-Seen)" \
		'^ip=127\.0\.0\.7 port=set name=- helo=client\.test from=<ok@sender\.test> rcpts=1 hdrs=10 ' \
		"stub: engine saw client, HELO, sender, recipient and headers"
	sid=$(trace_sid "$qid")
	if [ -z "$sid" ]; then
		not_ok "stub: queue id (macro i) reaches the engine at EOM" \
			"$(tail -20 "$MXW_STUB_TRACE")"
		return
	fi
	ok "stub: queue id (macro i) reaches the engine at EOM"
	local tr
	tr=$(grep "^$sid " "$MXW_STUB_TRACE")
	like "$tr" "$sid connect ip=127\.0\.0\.7 port=[1-9][0-9]* name=- j=mta\.mxw\.test" \
		"stub: connect: address, port, no name (no lookup), \$j"
	like "$tr" "header X-Spaced:\[   three spaces\]" \
		"stub: header value keeps its exact leading space"
	like "$tr" 'header X-Folded:\[ first\\n\\tsecond\]' \
		"stub: folded header passed raw"
	like "$tr" "$sid free" "stub: txn freed at close"
}

part2_replies() {
	local r n
	r=$(stub_send rej 127.0.0.7 client.test reject@sender.test u@local.test)
	is "$r" "550 5.1.8 Sender address rejected: 100% bogus" \
		"stub: reject at MAIL, '%' reaches the client once"
	r=$(stub_send ctrl 127.0.0.7 client.test ctrl@sender.test u@local.test)
	is "$r" "550 5.7.1 bad  line and 50%" \
		"stub: control characters in reply text become spaces"
	r=$(stub_send badx 127.0.0.7 client.test badx@sender.test u@local.test)
	is "$r" "550 5.7.1 Mismatched code" \
		"stub: an enhanced code of the wrong class is replaced"
	r=$(stub_send tmp 127.0.0.7 client.test tempfail@sender.test u@local.test)
	is "$r" "451 4.7.1 Try again later" "stub: tempfail at MAIL"
	r=$(stub_send rcpt 127.0.0.7 client.test ok@sender.test reject@local.test)
	is "$r" "550 5.1.1 No such user" "stub: reject at RCPT"
	r=$(stub_send r421 127.0.0.7 client.test ok@sender.test rej4xx@local.test)
	is "$r" "421 4.7.0 Too busy" "stub: a 4xx code in a reject verdict is a 4xx"
	r=$(stub_send helo 127.0.0.7 reject.helo.test ok@sender.test u@local.test)
	is "$r" "550 5.7.1 Bad HELO, 100% sure" "stub: reject at HELO"
	r=$(stub_send eomrej 127.0.0.7 client.test ok@sender.test u@local.test \
		"X-Stub: reject-eom")
	is "$r" "550 5.7.26 Unauthenticated email is not accepted" \
		"stub: reject at end of message"
	r=$(stub_send eomtmp 127.0.0.7 client.test ok@sender.test u@local.test \
		"X-Stub: tempfail-eom")
	is "$r" "451 4.7.1 Try again later" "stub: tempfail at end of message"
	n=$(delivered_count)
	is "$n" 1 "stub: nothing rejected was delivered"
}

part2_quarantine_discard() {
	local r n before
	before=$(delivered_count)
	r=$(stub_send quar 127.0.0.7 client.test ok@sender.test u@local.test \
		"X-Stub: quarantine")
	like "$r" '^250 ' "stub: quarantined message accepted"
	for ((n = 0; n < 50; n++)); do
		[ "$(postfix_hold_count)" -ge 1 ] && break
		sleep 0.1
	done
	is "$(postfix_hold_count)" 1 "stub: quarantine puts it on hold"
	like "$(grep -h 'milter-hold' "$MXW_RUN/p2/postfix.log")" 'milter triggers HOLD action' \
		"stub: Postfix logs the hold"
	local held
	held=$(find "$PF_QUEUE/hold" -type f | head -1)
	like "$(PATH=$PATH:/usr/sbin postcat -c "$PF_CONF" -h "$held" 2>&1)" \
		'Authentication-Results: mx\.mxw\.test;' \
		"stub: the held message has its header edits"
	r=$(stub_send disc 127.0.0.7 client.test discard@sender.test u@local.test)
	like "$r" '^250 ' "stub: discarded message looks accepted"
	r=$(stub_send disc2 127.0.0.7 client.test ok@sender.test u@local.test \
		"X-Stub: discard-eom")
	like "$r" '^250 ' "stub: message discarded at EOM looks accepted"
	r=$(stub_send after 127.0.0.7 client.test ok@sender.test u@local.test \
		"X-Stub: accept-early")
	like "$r" '^250 ' "stub: early accept"
	if wait_delivered $((before + 1)); then
		sleep 1
		is "$(delivered_count)" $((before + 1)) \
			"stub: only the accepted one arrives (discards dropped)"
		local d
		d=$(delivered_file $((before + 1)))
		is "$(header_of "$d" Subject)" after "stub: the early-accepted message arrived"
		is "$(header_of "$d" X-Spam-Status)" "No, score=0.0 required=5.0 tests=STUB_ENGINE" \
			"stub: early accept still gets the end-of-message headers"
	else
		not_ok "stub: only the accepted one arrives (discards dropped)"
	fi
}

part2_rcpt_rej() {
	local r
	# Postfix tells the milter about recipients it rejected itself
	# ({rcpt_mailer} = error) when asked for SMFIP_RCPT_REJ.
	r=$(stub_send relay 127.0.0.8 client.test ok@sender.test u@elsewhere.test)
	like "$r" '^554 5\.7\.1 ' "stub: Postfix denies relaying"
	if grep -q 'symbol RCPT_REJECTED_BY_MTA <u@elsewhere.test>' "$MXW_STUB_TRACE"; then
		ok "stub: recipient rejected by Postfix reported as such"
	else
		not_ok "stub: recipient rejected by Postfix reported as such" \
			"$(tail -5 "$MXW_STUB_TRACE")"
	fi
}

part2() {
	local run=$MXW_RUN/p2 st t0 t1
	mkdir -p "$run"
	if ! start_milter_stub "$run" || ! start_sink "$run" ||
	    ! start_postfix "$run" "$MXW_MILTER"; then
		not_ok "stub: milter, Postfix and sink start"
		return
	fi
	ok "stub: milter, Postfix and sink start"
	part2_accept
	part2_replies
	part2_quarantine_discard
	part2_rcpt_rej
	stop_postfix "$PF_QUEUE"
	stop_pid "$MXW_PID" 20
	is "$MXW_STOP_STATUS" 0 "stub: SIGTERM stops the milter cleanly (exit 0, no leak)"
	like "$MXW_STOP_SECS" '^([0-9]|1[0-5])$' "stub: stops within 15 s"
	if grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' "$run/stub.log"; then
		not_ok "stub: no sanitizer report" "$(grep -A20 -E 'Sanitizer|runtime error' "$run/stub.log" | head -40)"
	else
		ok "stub: no sanitizer report"
	fi
}

# ---- part 3: Postfix -> mxwarden ----

# mx_send NAME IP MAILFROM [ALG DOMAIN SELECTOR] - a message with From:
# MAILFROM, DKIM-signed when ALG is given; $MUTATE (sed script) is applied
# after signing. Sets R (reply) and, when DELIVER=1 (default) and the
# reply is 250, D (the captured message) and AR, XS, XF (its
# Authentication-Results, X-Spam-Status, X-Spam-Flag).
MX_DELIVERED=0
mx_send() {
	local name=$1 ip=$2 from=$3 f
	f=$(mail_file "$name" "From: <$from>" "To: <u@local.test>" "Subject: $name")
	if [ $# -ge 6 ]; then
		sh "$MXW_TOP/tests/dkim/sign" "$MXW_RUN/p3" "$4" "$5" "$6" \
			<"$f" >"$f.signed" && mv "$f.signed" "$f"
	fi
	[ -n "${MUTATE:-}" ] && sed -i "$MUTATE" "$f"
	R=$(send_mail "$ip" good10.iprev.test "$from" u@local.test "$f")
	D= AR= XS= XF=
	if [ "${DELIVER:-1}" = 1 ] && [[ $R == 250* ]]; then
		MX_DELIVERED=$((MX_DELIVERED + 1))
		if wait_delivered "$MX_DELIVERED" 20; then
			D=$(delivered_file "$MX_DELIVERED")
			AR=$(header_of "$D" Authentication-Results)
			XS=$(header_of "$D" X-Spam-Status)
			XF=$(header_of "$D" X-Spam-Flag)
		fi
	fi
}

# A-R pieces the engine writes (RFC 8601).
AR_ID='mx\.mxw\.test;'
IPREV_NONE_RE='iprev=permerror policy\.iprev=127\.0\.0\.[0-9]+'

part3_spf() {
	local d
	mx_send spfpass 127.0.0.20 u@pass.spf.test
	is "$AR" "mx.mxw.test;	iprev=permerror policy.iprev=127.0.0.20;	spf=pass (domain of pass.spf.test designates 127.0.0.20 as permitted sender) smtp.mailfrom=u@pass.spf.test;	dkim=none;	dmarc=none header.from=pass.spf.test" \
		"matrix: SPF pass: exact Authentication-Results"
	like "$XS" '^No, score=[0-9.]+ required=5\.0 tests=DKIM_NONE,DMARC_NONE,IPREV_NONE,SPF_PASS$' \
		"matrix: SPF pass: X-Spam-Status"
	is "$XF" "" "matrix: SPF pass: no X-Spam-Flag"
	mx_send spffail 127.0.0.21 u@pass.spf.test
	like "$AR" "^$AR_ID	$IPREV_NONE_RE;	spf=fail \(domain of pass\.spf\.test does not designate 127\.0\.0\.21 as permitted sender\) smtp\.mailfrom=u@pass\.spf\.test;	dkim=none;	dmarc=none header\.from=pass\.spf\.test$" \
		"matrix: SPF fail: Authentication-Results"
	like "$XS" '^Yes, score=[0-9.]+ required=5\.0 tests=DKIM_NONE,DMARC_NONE,IPREV_NONE,SPF_FAIL$' \
		"matrix: SPF fail: X-Spam-Status Yes"
	is "$XF" "YES" "matrix: SPF fail: X-Spam-Flag YES"
	for d in softfail neutral; do
		mx_send "spf$d" 127.0.0.21 "u@$d.spf.test"
		like "$AR" "	spf=$d \([^)]*\) smtp\.mailfrom=u@$d\.spf\.test;" \
			"matrix: SPF $d: Authentication-Results"
		like "$XS" "tests=DKIM_NONE,DMARC_NONE,IPREV_NONE,SPF_${d^^}\$" \
			"matrix: SPF $d: X-Spam-Status"
	done
	mx_send spfnone 127.0.0.21 u@none.spf.test
	like "$AR" '	spf=none \([^)]*\) smtp\.mailfrom=u@none\.spf\.test;' \
		"matrix: SPF none: Authentication-Results"
	mx_send spfperm 127.0.0.21 u@permerror.spf.test
	like "$AR" '	spf=permerror( \([^)]*\))? smtp\.mailfrom=u@permerror\.spf\.test;' \
		"matrix: SPF permerror: Authentication-Results"
	like "$XS" 'tests=.*SPF_PERMERROR' "matrix: SPF permerror: X-Spam-Status"
	DELIVER=0 mx_send spftemp 127.0.0.21 u@temperror.spf.test
	if [[ $R == 250* ]]; then
		MX_DELIVERED=$((MX_DELIVERED + 1))
		wait_delivered "$MX_DELIVERED" 20
		like "$(header_of "$(delivered_file "$MX_DELIVERED")" Authentication-Results)" \
			'	spf=temperror' "matrix: SPF temperror: accepted with spf=temperror"
	else
		like "$R" '^4[0-9][0-9] 4\.[0-9.]+ ' \
			"matrix: SPF temperror: deferred (on_dns_error = tempfail)"
	fi
}

part3_iprev() {
	mx_send iprevpass 127.0.0.10 u@mx.sender.test
	like "$AR" "^$AR_ID	iprev=pass \(good10\.iprev\.test\) policy\.iprev=127\.0\.0\.10;" \
		"matrix: iprev pass from 127.0.0.10"
	like "$XS" 'tests=.*IPREV_PASS' "matrix: iprev pass: X-Spam-Status"
	mx_send iprevfail 127.0.0.11 u@mx.sender.test
	like "$AR" "^$AR_ID	iprev=fail \(bad11\.iprev\.test\) policy\.iprev=127\.0\.0\.11;" \
		"matrix: iprev fail from 127.0.0.11"
	like "$XS" 'tests=.*IPREV_FAIL' "matrix: iprev fail: X-Spam-Status"
	mx_send iprevnone 127.0.0.12 u@mx.sender.test
	like "$AR" "^$AR_ID	iprev=permerror policy\.iprev=127\.0\.0\.12;" \
		"matrix: iprev without PTR from 127.0.0.12"
	like "$XS" 'tests=.*IPREV_NONE' "matrix: iprev none: X-Spam-Status"
}

part3_dkim() {
	local dom=none.dmarc.test
	mx_send dkimrsa 127.0.0.20 "u@$dom" rsa-sha256 "$dom" rsa
	like "$AR" "	dkim=pass header\.d=none\.dmarc\.test header\.s=rsa header\.a=rsa-sha256 header\.b=[A-Za-z0-9+/]{8};	dmarc=pass \(p=none dis=none\) header\.from=none\.dmarc\.test\$" \
		"matrix: DKIM pass (rsa-sha256), DMARC pass"
	like "$XS" '^No, .*tests=DKIM_PASS,DMARC_PASS,IPREV_NONE,SPF_PASS$' \
		"matrix: DKIM pass: X-Spam-Status"
	mx_send dkimed 127.0.0.20 "u@$dom" ed25519-sha256 "$dom" ed
	like "$AR" "	dkim=pass header\.d=none\.dmarc\.test header\.s=ed header\.a=ed25519-sha256 header\.b=[A-Za-z0-9+/]{8};" \
		"matrix: DKIM pass (ed25519-sha256)"
	MUTATE='s/^Test body line/Altered body line/' \
		mx_send dkimbody 127.0.0.20 "u@$dom" rsa-sha256 "$dom" rsa
	like "$AR" "	dkim=fail \(body hash mismatch\) header\.d=none\.dmarc\.test header\.s=rsa " \
		"matrix: DKIM fail (body altered)"
	like "$XS" 'tests=DKIM_FAIL,' "matrix: DKIM fail (body): X-Spam-Status"
	MUTATE='s/^Subject: dkimhdr/Subject: altered/' \
		mx_send dkimhdr 127.0.0.20 "u@$dom" rsa-sha256 "$dom" rsa
	like "$AR" "	dkim=fail( \([^)]*\))? header\.d=none\.dmarc\.test header\.s=rsa " \
		"matrix: DKIM fail (header altered)"
	mx_send dkimrevoked 127.0.0.20 u@dkim.test rsa-sha256 dkim.test revoked
	like "$AR" "	dkim=(fail|permerror)( \([^)]*\))? header\.d=dkim\.test header\.s=revoked " \
		"matrix: DKIM revoked key"
	like "$XS" 'tests=DKIM_(FAIL|PERMERROR),' "matrix: DKIM revoked: X-Spam-Status"
}

part3_dmarc() {
	local held
	mx_send dmarcrej 127.0.0.21 u@reject.dmarc.test
	is "$R" "550 5.7.26 Unauthenticated email from reject.dmarc.test is not accepted due to domain's DMARC policy" \
		"matrix: DMARC p=reject fail: 550 5.7.26"
	held=$(postfix_hold_count)
	DELIVER=0 mx_send dmarcq 127.0.0.21 u@quarantine.dmarc.test
	like "$R" '^250 ' "matrix: DMARC p=quarantine fail: accepted"
	wait_until_hold $((held + 1))
	is "$(postfix_hold_count)" $((held + 1)) "matrix: DMARC p=quarantine fail: on hold"
	mx_send dmarcnone 127.0.0.21 u@none.dmarc.test
	like "$AR" "	dmarc=fail \(p=none dis=none\) header\.from=none\.dmarc\.test\$" \
		"matrix: DMARC p=none fail: delivered, dmarc=fail"
	like "$XS" 'tests=.*DMARC_FAIL_NONE' "matrix: DMARC p=none: X-Spam-Status"
}

wait_until_hold() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(postfix_hold_count)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

part3_sender() {
	mx_send nullmx 127.0.0.20 u@nullmx.sender.test
	is "$R" "556 5.1.10 Sender address rejected: domain does not accept mail (null MX)" \
		"matrix: null MX sender: 556 5.1.10"
	mx_send nx 127.0.0.20 u@nx.sender.test
	is "$R" "550 5.1.8 Sender address rejected: domain nx.sender.test does not exist" \
		"matrix: nonexistent sender domain: 550 5.1.8"
}

part3() {
	local run=$MXW_RUN/p3 r d f
	if [ ! -x "$MXW_BIN/mxwarden" ]; then
		skip "mxwarden: smoke test" "$MXW_BIN/mxwarden not built"
		return
	fi
	mkdir -p "$run"
	if ! sh "$MXW_TOP/tests/dkim/keys" "$run" >"$run/keys.log" 2>&1; then
		not_ok "mxwarden: DKIM test keys" "$(tail "$run/keys.log")"
		return
	fi
	if ! start_dns "$run"; then
		not_ok "mxwarden: test DNS starts" "$(tail "$run/dnsenv.log")"
		return
	fi
	if ! start_mxwarden "$run" || ! start_sink "$run" ||
	    ! start_postfix "$run" "$MXW_MILTER"; then
		not_ok "mxwarden: milter, Postfix and sink start" \
			"$(tail -20 "$run/mxwarden.log")"
		return
	fi
	ok "mxwarden: milter, Postfix and sink start"
	f=$(mail_file smoke "From: <user@mx.sender.test>" \
		"To: <u@local.test>" "Subject: smoke" \
		"Authentication-Results: mx.mxw.test; spf=pass smtp.mailfrom=forged.test" \
		"Authentication-Results: other.test; spf=fail")
	r=$(send_mail 127.0.0.5 client.test "user@mx.sender.test" \
		u@local.test "$f")
	like "$r" '^250 ' "mxwarden: message accepted"
	MX_DELIVERED=1
	if wait_delivered 1; then
		d=$(delivered_file 1)
		like "$(header_of "$d" Authentication-Results 1)" '^mx\.mxw\.test;' \
			"mxwarden: Authentication-Results with our authserv-id"
		is "$(header_of "$d" Authentication-Results 2)" "other.test; spf=fail" \
			"mxwarden: another authserv-id's A-R kept"
		unlike "$(cat "$d")" 'forged\.test' "mxwarden: forged A-R removed"
		like "$(header_of "$d" X-Spam-Status)" '^(Yes|No), score=-?[0-9.]+ required=[0-9.]+' \
			"mxwarden: X-Spam-Status"
	else
		not_ok "mxwarden: message delivered" "$(tail -20 "$run/mxwarden.log")"
	fi
	f=$(mail_file nx "From: <user@nx.sender.test>" "To: <u@local.test>" "Subject: nx")
	r=$(send_mail 127.0.0.5 client.test user@nx.sender.test u@local.test "$f")
	is "$r" "550 5.1.8 Sender address rejected: domain nx.sender.test does not exist" \
		"mxwarden: nonexistent sender domain rejected (rule file)"
	if [ -n "${MXW_SMOKE_ONLY:-}" ]; then
		skip "matrix" "MXW_SMOKE_ONLY set"
	else
		part3_spf
		part3_iprev
		part3_dkim
		part3_dmarc
		part3_sender
	fi
	stop_postfix "$PF_QUEUE"
	stop_pid "$MXW_PID" 20
	is "$MXW_STOP_STATUS" 0 "mxwarden: SIGTERM stops it cleanly"
}

part1
part2
part3
done_testing
