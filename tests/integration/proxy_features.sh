#!/usr/bin/env bash
# proxy_features.sh - the SMTP proxy's client identity and triage
# features against a private Postfix relaying to smtp-sink:
# proxy_backend_forward = proxy-v1 / proxy-v2 (Postfix with
# smtpd_upstream_proxy_protocol = haproxy on a port of its own, its
# Received header naming the real client), PROXY headers accepted from
# proxy_trusted_upstreams only, the per-IP connection limit, the greet
# pause (PREGREET), pipelining without PIPELINING offered, the recipient
# limit, bare-LF exemptions, and quarantine as a header the backend
# holds on (Postfix header_checks HOLD).
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=proxy_features

mxw_require "to run a private Postfix" postfix smtp-sink swaks /usr/bin/python3
mxw_rundir
. "$MXW_TOP/tests/integration/proxy/common.sh"

codes() { printf '%s\n' "$1" | grep -E '^[0-9]{3} |^EOF|^TIMEOUT' |
	sed -E 's/^([0-9]{3}) .*/\1/' | tr '\n' ' '; }

# ---- set-up ----
if ! start_dns "$MXW_RUN"; then
	not_ok "test DNS starts"; done_testing
fi
if ! start_sink "$MXW_RUN"; then
	not_ok "smtp-sink starts"; done_testing
fi
echo '/^X-Mxwarden-Quarantine: yes$/ HOLD quarantined by mxwarden' >"$MXW_RUN/hold.re"
PF_EXTRA_MAIN="smtpd_authorized_xclient_hosts = 127.0.0.1
header_checks = regexp:$MXW_RUN/hold.re"
HA_PORT=$(free_port)
PF_EXTRA_MASTER="$HA_PORT inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy"
if ! start_postfix "$MXW_RUN" ""; then
	not_ok "backend Postfix starts"; done_testing
fi
PF_EXTRA_MASTER=
if wait_port "$HA_PORT" 20; then
	ok "Postfix listens with smtpd_upstream_proxy_protocol = haproxy"
else
	not_ok "Postfix listens with smtpd_upstream_proxy_protocol = haproxy"
	done_testing
fi
f=$(mail_file feat "From: <a@sender.test>" "To: <u@local.test>" "Subject: features")

# ---- PROXY protocol to the backend ----
for v in 1 2; do
	ip=127.0.0.$((6 + v))
	if start_proxy "pp$v" "127.0.0.1:$HA_PORT" "proxy_backend_forward = proxy-v$v"; then
		n0=$(count_sink)
		r=$(pmail "$ip" client$v.test a@sender.test u@local.test "$f")
		like "$r" "$PF_BDAT_250" "proxy-v$v: Postfix accepts the message"
		if wait_delivered $((n0 + 1)); then
			like "$(header_of "$(delivered_file $((n0 + 1)))" Received 2)" \
				"from client$v\\.test \\(.*\\[${ip//./\\.}\\]" \
				"proxy-v$v: Postfix's Received names the real client $ip"
		else
			not_ok "proxy-v$v: message delivered"
		fi
		grep -q "connect from unknown\[$ip\]" "$MXW_RUN/postfix.log" &&
			ok "proxy-v$v: Postfix logs the real client" ||
			not_ok "proxy-v$v: Postfix logs the real client" "$(grep 'connect from' "$MXW_RUN/postfix.log" | tail -3)"
		stop_pid "$PROXY_PID" >/dev/null
	else
		not_ok "proxy with proxy-v$v starts"
	fi
done

# ---- the main proxy for the rest (XCLIENT to Postfix) ----
PROXY_RULES='rule TEST_QUARANTINE header:Subject /quarantine me/ action quarantine'
if ! start_proxy p1 "127.0.0.1:$SMTP_PORT" "proxy_trusted_upstreams = 127.0.0.9/32" \
	"proxy_max_per_ip = 2" "proxy_max_recipients = 2" \
	"proxy_bare_lf_exempt = 127.0.0.12"; then
	not_ok "main proxy starts" "$(tail -20 "$MXW_RUN/p1/mxwarden.log")"; done_testing
fi
PROXY_RULES=
P1=$PROXY_PORT
LOG1=$MXW_RUN/p1/mxwarden.log

# ---- PROXY headers from a trusted upstream ----
n0=$(count_sink)
out=$(smtpc "$P1" --ip 127.0.0.9 --no-banner \
	send:'PROXY TCP4 192.0.2.44 127.0.0.1 5555 25\r\n' reply \
	send:'EHLO lb-client.test\r\n' reply send:'MAIL FROM:<a@sender.test>\r\n' reply \
	send:'RCPT TO:<u@local.test>\r\n' reply send:'DATA\r\n' reply \
	send:'Subject: via balancer\r\n\r\nbody\r\n.\r\n' reply send:'QUIT\r\n' reply)
is "$(codes "$out")" "220 250 250 250 354 250 221 " "PROXY v1 from a trusted upstream: session works"
if wait_delivered $((n0 + 1)); then
	like "$(header_of "$(delivered_file $((n0 + 1)))" Received 2)" \
		'from lb-client\.test \(.*\[192\.0\.2\.44\]' \
		"PROXY v1: the backend sees the client from the header (XCLIENT)"
else
	not_ok "PROXY v1 message delivered"
fi
grep -q 'PROXY header: client \[192\.0\.2\.44\]:5555' "$LOG1" &&
	ok "PROXY v1: the engine's client is the header's" ||
	not_ok "PROXY v1: the engine's client is the header's"
v2='\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x07\x7f\x00\x00\x01\x1f\x90\x00\x19'
out=$(smtpc "$P1" --ip 127.0.0.9 --no-banner send:"$v2" reply \
	send:'EHLO lb-client.test\r\n' reply send:'QUIT\r\n' reply)
is "$(codes "$out")" "220 250 221 " "PROXY v2 from a trusted upstream: session works"
grep -q 'PROXY header: client \[198\.51\.100\.7\]:8080' "$LOG1" &&
	ok "PROXY v2: the engine's client is the header's" ||
	not_ok "PROXY v2: the engine's client is the header's"
out=$(smtpc "$P1" --ip 127.0.0.9 --no-banner send:'EHLO no-header.test\r\n' drain)
like "$out" '^421 4\.3\.0 .*PROXY protocol header expected' \
	"trusted upstream without a PROXY header: 421"
out=$(smtpc "$P1" --ip 127.0.0.6 --no-banner \
	send:'PROXY TCP4 192.0.2.44 127.0.0.1 5555 25\r\n' drain)
like "$out" '421 4\.7\.0 ' "PROXY v1 from an untrusted client: 421"
out=$(smtpc "$P1" --ip 127.0.0.6 --no-banner send:"$v2" drain)
like "$out" '421 4\.7\.0 ' "PROXY v2 from an untrusted client: 421"
unlike "$(grep -c '192\.0\.2\.44\|198\.51\.100\.7' "$LOG1")" '^[3-9]' \
	"untrusted PROXY headers never set the client"

# ---- the per-IP connection limit ----
# (a trusted upstream's connections stay quiet: no banner before its
# PROXY header, an immediate 421 if it were over the limit)
out=$(/usr/bin/python3 "$PROXY_HELPERS/conns.py" "$P1" hold:127.0.0.10 hold:127.0.0.10 \
	try:127.0.0.10 try:127.0.0.11)
out="$out
$(/usr/bin/python3 "$PROXY_HELPERS/conns.py" "$P1" quiet:127.0.0.9 quiet:127.0.0.9 \
	quiet:127.0.0.9)"
like "$(printf '%s\n' "$out" | sed -n 3p)" '^127\.0\.0\.10 421 4\.7\.0 ' \
	"the 3rd connection from one IP (proxy_max_per_ip = 2): 421 4.7.0"
like "$(printf '%s\n' "$out" | sed -n 1,2p | tr '\n' ' ')" '^127\.0\.0\.10 220 .*127\.0\.0\.10 220 ' \
	"the first two connections get the banner"
like "$(printf '%s\n' "$out" | sed -n 4p)" '^127\.0\.0\.11 220 ' "another IP meanwhile: 220"
is "$(printf '%s\n' "$out" | sed -n 5,7p | tr '\n' ' ')" \
	"127.0.0.9 WAITING 127.0.0.9 WAITING 127.0.0.9 WAITING " \
	"a trusted upstream is not held to the per-IP limit (3 connections, limit 2)"
grep -q 'PER-IP CONNECTION LIMIT 2' "$LOG1" && ok "per-IP limit logged" ||
	not_ok "per-IP limit logged"
# Behind the balancer each client, named by its PROXY header, is held to
# the per-IP limit: a third session of 192.0.2.77 gets 421, another
# client meanwhile its banner.
out=$(/usr/bin/python3 "$PROXY_HELPERS/conns.py" "$P1" pp:127.0.0.9:192.0.2.77 \
	pp:127.0.0.9:192.0.2.77 pp:127.0.0.9:192.0.2.77 pp:127.0.0.9:192.0.2.78)
like "$(printf '%s\n' "$out" | sed -n 1,2p | tr '\n' ' ')" \
	'^192\.0\.2\.77 220 .*192\.0\.2\.77 220 ' \
	"behind a trusted upstream: a client's first two sessions get the banner"
like "$(printf '%s\n' "$out" | sed -n 3p)" '^192\.0\.2\.77 421 4\.7\.0 ' \
	"behind a trusted upstream: the client's 3rd session (limit 2): 421 4.7.0"
like "$(printf '%s\n' "$out" | sed -n 4p)" '^192\.0\.2\.78 220 ' \
	"behind a trusted upstream: another client meanwhile: 220"

# ---- pipelining after HELO (PIPELINING not offered) ----
out=$(smtpc "$P1" send:'HELO old.test\r\n' reply \
	send:'MAIL FROM:<a@sender.test>\r\nRCPT TO:<u@local.test>\r\n' drain)
like "$(codes "$out")" '^220 250 554 EOF $' "pipelining after HELO: 554 and dropped"
grep -q 'COMMAND PIPELINING without PIPELINING offered' "$LOG1" &&
	ok "PIPELINING_UNOFFERED logged" || not_ok "PIPELINING_UNOFFERED logged"
out=$(smtpc "$P1" send:'HELO old.test\r\n' reply send:'MAIL FROM:<a@sender.test>\r\n' reply \
	send:'RCPT TO:<u@local.test>\r\n' reply send:'QUIT\r\n' reply)
is "$(codes "$out")" "220 250 250 250 221 " "HELO client waiting for each reply: fine"

# ---- the recipient limit ----
out=$(smtpc "$P1" send:'EHLO a.test\r\n' reply send:'MAIL FROM:<a@sender.test>\r\n' reply \
	send:'RCPT TO:<u1@local.test>\r\n' reply send:'RCPT TO:<u2@local.test>\r\n' reply \
	send:'RCPT TO:<u3@local.test>\r\n' reply send:'QUIT\r\n' reply)
is "$(codes "$out")" "220 250 250 250 250 452 221 " "3rd recipient over proxy_max_recipients = 2: 452"
like "$out" '452 4\.5\.3 ' "recipient limit: 452 4.5.3"

# ---- bare LF: repaired for listed clients only ----
printf 'EHLO legacy.test\nMAIL FROM:<a@sender.test>\nRCPT TO:<u@local.test>\nDATA\nSubject: bare lf\n\nline one\nline two\n.\nQUIT\n' >"$MXW_RUN/lf.in"
n0=$(count_sink)
out=$(raw_smtp "$P1" "$MXW_RUN/lf.in" 127.0.0.12)
is "$(codes "$out")" "220 250 250 250 354 250 221 " "exempt client: bare-LF session accepted"
if wait_delivered $((n0 + 1)); then
	d=$(delivered_file $((n0 + 1)))
	is "$(grep -c '^line \(one\|two\)$' "$d")" 2 "exempt client: lines arrive intact, one per line"
else
	not_ok "exempt client's message delivered"
fi
n0=$(count_sink)
out=$(raw_smtp "$P1" "$MXW_RUN/lf.in" 127.0.0.13)
like "$(codes "$out")" '^220 500 500 500 500 ' "other client: bare LF refused (500)"
sleep 1
is "$(count_sink)" "$n0" "other client: nothing delivered"

# ---- quarantine: the backend holds on our header ----
n0=$(count_sink)
h0=$(postfix_hold_count)
q=$(mail_file q "From: <a@sender.test>" "To: <u@local.test>" "Subject: please quarantine me")
r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$q")
like "$r" "$PF_BDAT_250" "quarantined message: backend's 250"
for ((i = 0; i < 50 && $(postfix_hold_count) == h0; i++)); do sleep 0.2; done
is "$(postfix_hold_count)" $((h0 + 1)) "quarantined message is in Postfix's hold queue"
sleep 1
is "$(count_sink)" "$n0" "quarantined message not delivered"
forged=$(mail_file forged "From: <a@sender.test>" "To: <u@local.test>" "Subject: forged flag" \
	"X-Mxwarden-Quarantine: yes")
r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$forged")
like "$r" "$PF_BDAT_250" "client-sent quarantine field: accepted"
if wait_delivered $((n0 + 1)); then
	is "$(header_count "$(delivered_file $((n0 + 1)))" X-Mxwarden-Quarantine)" 0 \
		"client-sent quarantine field removed, message not held"
else
	not_ok "message with a client-sent quarantine field delivered" "hold: $(postfix_hold_count)"
fi

# ---- greet pause ----
if start_proxy gp "127.0.0.1:$SMTP_PORT" "proxy_greet_pause = 1s"; then
	out=$(smtpc "$PROXY_PORT" --no-banner send:'EHLO eager.test\r\n' drain)
	like "$out" '^554 5\.3\.0 ' "talking before the banner: 554 5.3.0"
	unlike "$out" '^220' "talking before the banner: no banner"
	grep -q 'PREGREET' "$MXW_RUN/gp/mxwarden.log" && ok "PREGREET logged" ||
		not_ok "PREGREET logged"
	t0=$(date +%s%N)
	out=$(smtpc "$PROXY_PORT" send:'EHLO patient.test\r\n' reply send:'QUIT\r\n' reply)
	t1=$(date +%s%N)
	is "$(codes "$out")" "220 250 221 " "a client waiting for the banner: served"
	[ $(((t1 - t0) / 1000000)) -ge 900 ] && ok "the banner waits for the greet pause" ||
		not_ok "the banner waits for the greet pause" "$(((t1 - t0) / 1000000)) ms"
else
	not_ok "proxy with a greet pause starts"
fi

done_testing
