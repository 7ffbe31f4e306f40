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
	is "$(header_of "$d" X-Spam-Status)" "No, score=0.0 required=5.0 tests=STUB" \
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
		is "$(header_of "$d" X-Spam-Status)" "No, score=0.0 required=5.0 tests=STUB" \
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

part3() {
	local run=$MXW_RUN/p3 r d f
	if [ ! -x "$MXW_BIN/mxwarden" ]; then
		skip "mxwarden: smoke test" "$MXW_BIN/mxwarden not built"
		return
	fi
	mkdir -p "$run"
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
	stop_postfix "$PF_QUEUE"
	stop_pid "$MXW_PID" 20
	is "$MXW_STOP_STATUS" 0 "mxwarden: SIGTERM stops it cleanly"
}

part1
part2
part3
done_testing
