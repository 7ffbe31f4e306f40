#!/usr/bin/env bash
# proxy_postfix.sh - the SMTP proxy front end (mxwarden proxy) in front
# of a private Postfix (XCLIENT authorized) relaying to smtp-sink.
#
# Asserts reply codes, that accepted messages arrive once with the
# engine's headers and the real client address, that refused ones do
# not arrive, SMTP smuggling variants, oversize lines and messages,
# pipelining in one write, a client vanishing in DATA and a dead
# backend. Postfix offers CHUNKING: messages go to it as one BDAT
# (proxy_backend_chunking); a second proxy with it off uses DATA.
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=proxy_postfix

mxw_require "to run a private Postfix" postfix smtp-sink swaks /usr/bin/python3
mxw_rundir

. "$MXW_TOP/tests/integration/proxy/common.sh"

# arrives_as N SUBJECT NAME - the N-th message in the sink comes, with
# SUBJECT.
arrives_as() {
	if wait_delivered "$1"; then
		is "$(header_of "$(delivered_file "$1")" Subject)" "$2" "$3"
	else
		not_ok "$3" "$(tail -20 "$MXW_RUN/postfix.log")"
	fi
}

# ---- set-up ----
if ! start_dns "$MXW_RUN"; then
	not_ok "test DNS starts"; done_testing
fi
if ! start_sink "$MXW_RUN"; then
	not_ok "smtp-sink starts"; done_testing
fi
printf '%s\n' '/^Subject: refuse at the end$/ REJECT content refused by the backend' \
	>"$MXW_RUN/refuse.re"
PF_EXTRA_MAIN="smtpd_authorized_xclient_hosts = 127.0.0.1
header_checks = regexp:$MXW_RUN/refuse.re"
if ! start_postfix "$MXW_RUN" ""; then
	not_ok "backend Postfix starts"; done_testing
fi
if start_proxy p1 "127.0.0.1:$SMTP_PORT" "message_size_limit = 200000" \
	"proxy_spool_memory = 4096"; then
	ok "proxy starts in front of Postfix"
else
	not_ok "proxy starts in front of Postfix" "$(tail -20 "$MXW_RUN/p1/mxwarden.log")"
	done_testing
fi
P1=$PROXY_PORT P1_PID=$PROXY_PID

# ---- a plain accepted message ----
f=$(mail_file plain "From: <a@sender.test>" "To: <u@local.test>" "Subject: via proxy" \
	"Authentication-Results: mx.mxw.test; spf=pass smtp.mailfrom=forged.test")
r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$f")
# Postfix answers BDAT with "Ok: N bytes queued as", DATA's dot without
# the byte count.
like "$r" "$PF_BDAT_250" \
	"EHLO session: backend's 250 passed on (the message went as BDAT)"
if wait_delivered 1; then
	ok "accepted message reaches the sink"
	d=$(delivered_file 1)
	is "$(header_of "$d" Subject)" "via proxy" "message intact"
	is "$(header_count "$d" Authentication-Results)" 1 "forged A-R removed, ours added"
	like "$(header_of "$d" Authentication-Results)" '^mx\.mxw\.test;' "A-R with our authserv-id"
	like "$(header_of "$d" X-Spam-Status)" '^(No|Yes), score=' "X-Spam-Status added"
	like "$(header_of "$d" Received 2)" 'from client\.test \(.*127\.0\.0\.5\]' \
		"backend logs the real client (XCLIENT) and its HELO"
else
	not_ok "accepted message reaches the sink" "$(tail -20 "$MXW_RUN/postfix.log")"
fi

# ---- relaying is the backend's decision, passed on ----
r=$(pmail 127.0.0.5 client.test a@sender.test u@elsewhere.test "$f")
like "$r" '^554 5\.7\.1 .*Relay access denied' "backend's relay refusal passed on"

# ---- BDAT refused by the backend, then a second message in the session ----
n0=$(count_sink)
out=$(smtpc "$P1" --ip 127.0.0.5 send:'EHLO client.test\r\n' reply \
	send:'MAIL FROM:<a@sender.test>\r\n' reply send:'RCPT TO:<u@local.test>\r\n' reply \
	send:'DATA\r\n' reply \
	send:'From: <a@sender.test>\r\nSubject: refuse at the end\r\n\r\nno\r\n.\r\n' reply \
	send:'MAIL FROM:<a@sender.test>\r\n' reply send:'RCPT TO:<u@local.test>\r\n' reply \
	send:'DATA\r\n' reply \
	send:'From: <a@sender.test>\r\nSubject: second after refusal\r\n\r\nyes\r\n.\r\n' reply \
	send:'QUIT\r\n' reply)
like "$(printf '%s\n' "$out" | grep -E '^[0-9]{3} ' | sed -n 6p)" \
	'^550 5\.7\.1 content refused by the backend' "backend's refusal of a BDAT message passed on"
like "$(printf '%s\n' "$out" | grep -E '^[0-9]{3} ' | sed -n 7,10p | tr '\n' ' ')" \
	'^250 [^ ]+ [^ ]+ 250 [^ ]+ [^ ]+ 354 .* 250 2\.0\.0 Ok: [0-9]+ bytes queued as ' \
	"after it, the next transaction in the session goes through (the backend's was reset)"
arrives_as $((n0 + 1)) "second after refusal" "only the second message arrives"
sleep 0.5
is "$(count_sink)" $((n0 + 1)) "... once, and the refused one never"

# ---- proxy_backend_chunking = no: DATA, dot-stuffed ----
if start_proxy p0 "127.0.0.1:$SMTP_PORT" "proxy_backend_chunking = no"; then
	n0=$(count_sink)
	r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$f")
	like "$r" '^250 2\.0\.0 Ok: queued as ' \
		"proxy_backend_chunking = no: the message goes as DATA (Postfix's reply to the dot)"
	arrives_as $((n0 + 1)) "via proxy" "... and arrives intact"
	stop_pid "$PROXY_PID" 20
else
	not_ok "a proxy with proxy_backend_chunking = no starts" \
		"$(tail -20 "$MXW_RUN/p0/mxwarden.log")"
fi
PROXY_PORT=$P1 PROXY_PID=$P1_PID

# ---- HELO (plain SMTP), dot-stuffing, a spooled (file) message ----
big=$MXW_RUN/big.eml
{
	printf 'From: <a@sender.test>\r\nTo: <u@local.test>\r\nSubject: big\r\n'
	printf 'Message-ID: <big.%s@mxw.test>\r\nDate: %s\r\n\r\n' "$$" "$(date -R)"
	printf '.leading dot line\r\n'
	for i in $(seq 1 400); do printf 'line %04d of a message bigger than the memory spool\r\n' "$i"; done
} >"$big"
n0=$(count_sink)
r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$big" --protocol SMTP)
like "$r" "$PF_BDAT_250" \
	"HELO session with a 20 KB message (temporary file), as BDAT"
if wait_delivered $((n0 + 1)); then
	d=$(delivered_file $((n0 + 1)))
	is "$(grep -c '^line [0-9]* of a message' "$d")" 400 "every body line arrives"
	is "$(grep -c '^\.leading dot line' "$d")" 1 \
		"a leading dot arrives as sent (unstuffed from the client, BDAT has no stuffing)"
else
	not_ok "spooled message reaches the sink"
fi

# ---- pipelining: the whole transaction in one write ----
n0=$(count_sink)
printf 'EHLO pipe.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<u@local.test>\r\nRCPT TO:<v@elsewhere.test>\r\nDATA\r\nSubject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n' >"$MXW_RUN/pipe.in"
out=$(raw_smtp "$P1" "$MXW_RUN/pipe.in")
codes=$(printf '%s\n' "$out" | grep -E '^[0-9]{3} ' | cut -c1-3 | tr '\n' ' ')
is "$codes" "220 250 250 250 554 354 250 221 " "pipelined replies complete and in order"
wait_delivered $((n0 + 1)) 10
is "$(count_sink)" $((n0 + 1)) "pipelined message delivered once"

# ---- SMTP smuggling: every variant refused, nothing delivered ----
smuggle() {
	local name=$1 end=$2 n0 out
	n0=$(count_sink)
	printf "EHLO smuggle.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<u@local.test>\r\nDATA\r\nSubject: first\r\n\r\nfirst body${end}MAIL FROM:<admin@sender.test>\r\nRCPT TO:<victim@local.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n" >"$MXW_RUN/sm.in"
	out=$(raw_smtp "$P1" "$MXW_RUN/sm.in")
	like "$out" '550 5\.5\.2 ' "smuggling $name: refused with 550 5.5.2"
	sleep 1
	is "$(count_sink)" "$n0" "smuggling $name: backend got no message"
}
smuggle '\n.\n' '\n.\n'
smuggle '\n.\r\n' '\n.\r\n'
smuggle '\r.\r\n' '\r.\r\n'
smuggle '\r\n.\r' '\r\n.\r'
smuggle '\r\n.\n' '\r\n.\n'
grep -q 'BARE LF IN DATA' "$MXW_RUN/p1/mxwarden.log" && ok "smuggling logged (BARE LF IN DATA)" ||
	not_ok "smuggling logged (BARE LF IN DATA)"

# ---- bad commands ----
long=$(printf 'X%.0s' $(seq 1 600))
printf 'EHLO a.test\r\nNOOP %s\r\nNOOP\r\nHELO bad\nNUL\0x\r\nQUIT\r\n' "$long" >"$MXW_RUN/cmd.in"
out=$(raw_smtp "$P1" "$MXW_RUN/cmd.in")
codes=$(printf '%s\n' "$out" | grep -E '^[0-9]{3} ' | cut -c1-3 | tr '\n' ' ')
is "$codes" "220 250 500 250 500 500 221 " "long command, bare LF, NUL: 500 each, session goes on"
like "$out" '500 5\.5\.2 Error: command line too long' "command over 512 octets: 500 5.5.2"

printf 'GET / HTTP/1.0\r\n\r\n' >"$MXW_RUN/http.in"
like "$(raw_smtp "$P1" "$MXW_RUN/http.in")" '421 4\.7\.0 ' "HTTP request: 421 and closed"

# ---- oversize line and message ----
n0=$(count_sink)
{ printf 'Subject: long line\r\n\r\n'; printf 'Y%.0s' $(seq 1 1200); printf '\r\n'; } >"$MXW_RUN/long.eml"
r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$MXW_RUN/long.eml")
like "$r" '^552 5\.6\.0 ' "text line over 1000 octets: 552"
{ printf 'Subject: too big\r\n\r\n'; for i in $(seq 1 5000); do printf 'filler line %05d ..................................\r\n' "$i"; done; } >"$MXW_RUN/huge.eml"
r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$MXW_RUN/huge.eml")
like "$r" '^552 5\.3\.4 ' "message over message_size_limit: 552 5.3.4"
printf 'EHLO a.test\r\nMAIL FROM:<a@sender.test> SIZE=99999999\r\nQUIT\r\n' >"$MXW_RUN/size.in"
like "$(raw_smtp "$P1" "$MXW_RUN/size.in")" '552 5\.3\.4 ' "MAIL SIZE= over the limit: 552 5.3.4"
sleep 1
is "$(count_sink)" "$n0" "refused messages not delivered"

# ---- the client vanishes in DATA ----
printf 'EHLO a.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<u@local.test>\r\nDATA\r\nSubject: cut\r\n\r\nhalf a message\r\n' >"$MXW_RUN/cut.in"
raw_smtp "$P1" "$MXW_RUN/cut.in" >/dev/null
sleep 1
is "$(count_sink)" "$n0" "client gone in DATA: nothing delivered"

# ---- a dead backend ----
dead=$(free_port)
if start_proxy p2 "127.0.0.1:$dead" "proxy_backend_connect_timeout = 2s"; then
	printf 'EHLO a.test\r\nQUIT\r\n' >"$MXW_RUN/dead.in"
	like "$(raw_smtp "$PROXY_PORT" "$MXW_RUN/dead.in")" '^421 4\.4\.2 ' \
		"backend down: 421 at the greeting"
else
	not_ok "second proxy starts"
fi

stop_pid "$PROXY_PID"
is "$MXW_STOP_STATUS" 0 "proxy stops cleanly on SIGTERM"
grep -q 'running as root\|refusing to serve as root' "$MXW_RUN/p1/mxwarden.log" &&
	not_ok "proxy runs as the configured user" || ok "proxy runs as the configured user"
done_testing
