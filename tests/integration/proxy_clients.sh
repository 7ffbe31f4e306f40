#!/usr/bin/env bash
# proxy_clients.sh - real SMTP clients through the proxy (mxwarden proxy
# in front of a private Postfix, XCLIENT authorized, relaying to
# smtp-sink):
#   - Python's smtplib (Debian's /usr/bin/python3): plain, STARTTLS,
#     implicit TLS (SMTP_SSL), a refused recipient, a refused sender;
#   - swaks --pipeline (the whole envelope in one write);
#   - a private client Postfix whose relayhost is the proxy, once in
#     plain text and once with smtp_tls_security_level = encrypt:
#     delivered through the proxy, or bounced with the proxy's 5xx;
#   - proxy_max_connections: the connection over the total limit gets
#     421 4.7.0 (the per-IP limit is in proxy_features.sh).
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=proxy_clients

mxw_require "to run a private Postfix" postfix smtp-sink swaks openssl /usr/bin/python3
mxw_rundir
. "$MXW_TOP/tests/integration/proxy/common.sh"

# ---- set-up ----
if ! start_dns "$MXW_RUN"; then
	not_ok "test DNS starts"; done_testing
fi
if ! start_sink "$MXW_RUN"; then
	not_ok "smtp-sink starts"; done_testing
fi
PF_EXTRA_MAIN="smtpd_authorized_xclient_hosts = 127.0.0.1"
if ! start_postfix "$MXW_RUN" ""; then
	not_ok "backend Postfix starts"; done_testing
fi
B_QUEUE=$PF_QUEUE B_SMTP=$SMTP_PORT
mkdir -p "$MXW_RUN/tls"
if ! make_cert "$MXW_RUN/tls"; then
	not_ok "openssl makes a self-signed pair" "$(cat "$MXW_RUN/tls/openssl.log")"
	done_testing
fi
if start_proxy c1 "127.0.0.1:$B_SMTP" \
	"tls_cert_file = $MXW_RUN/tls/cert.pem" "tls_key_file = $MXW_RUN/tls/key.pem" \
	"proxy_listen_tls = @TLS@"; then
	ok "proxy with STARTTLS and implicit TLS starts"
else
	not_ok "proxy with STARTTLS and implicit TLS starts" "$(tail -20 "$MXW_RUN/c1/mxwarden.log")"
	done_testing
fi
P1=$PROXY_PORT P1TLS=$PROXY_TLS_PORT P1_PID=$PROXY_PID

# pysmtp MODE SUBJECT [FROM] [RCPT...] - one smtplib session (MODE plain,
# starttls or ssl) sending a short message; prints "tls VERSION" (if
# any), "features ..." and "result ..." (sendmail's refused dict) or
# "error CLASS CODE TEXT".
pysmtp() {
	timeout 60 /usr/bin/python3 - "$@" <<'PYEOF'
import smtplib, ssl, sys
mode, subj = sys.argv[1], sys.argv[2]
frm = sys.argv[3] if len(sys.argv) > 3 else 'a@mx.sender.test'
rcpts = sys.argv[4:] or ['u@local.test']
port = int(__import__('os').environ['PORT'])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
msg = ('From: <%s>\r\nTo: <u@local.test>\r\nSubject: %s\r\n'
       'Message-ID: <%s@py.mxw.test>\r\n\r\nsent by smtplib\r\n' % (frm, subj, subj))
try:
    if mode == 'ssl':
        s = smtplib.SMTP_SSL('127.0.0.1', port, local_hostname='py.client.test',
                             source_address=('127.0.0.8', 0), timeout=30, context=ctx)
    else:
        s = smtplib.SMTP('127.0.0.1', port, local_hostname='py.client.test',
                         source_address=('127.0.0.8', 0), timeout=30)
    s.ehlo()
    if mode == 'starttls':
        print('before', ' '.join(sorted(s.esmtp_features)))
        s.starttls(context=ctx)
        s.ehlo()
    if mode != 'plain':
        print('tls', s.sock.version())
    print('features', ' '.join(sorted(s.esmtp_features)))
    r = s.sendmail(frm, rcpts, msg)
    print('result', ' '.join('%s=%d' % (k, v[0]) for k, v in sorted(r.items())) or 'all')
    s.quit()
except smtplib.SMTPResponseException as e:
    print('error', type(e).__name__, e.smtp_code, e.smtp_error.decode('latin-1'))
except smtplib.SMTPRecipientsRefused as e:
    print('error', type(e).__name__, ' '.join('%s=%d' % (k, v[0]) for k, v in e.recipients.items()))
except (OSError, smtplib.SMTPException) as e:
    print('error', type(e).__name__, e)
PYEOF
}

# delivered_subject SUBJECT - how many sink files have that Subject.
delivered_subject() {
	local f n=0
	for f in "$SINK_DIR"/*; do
		[ -f "$f" ] || continue
		[ "$(header_of "$f" Subject)" = "$1" ] && n=$((n + 1))
	done
	echo "$n"
}

# wait_subject SUBJECT [SECONDS] - until one message with SUBJECT arrived.
wait_subject() {
	local i
	for ((i = 0; i < ${2:-20} * 10; i++)); do
		[ "$(delivered_subject "$1")" -ge 1 ] && return 0
		sleep 0.1
	done
	return 1
}

# one_copy SUBJECT NAME - exactly one copy arrived, with our A-R.
one_copy() {
	wait_subject "$1" 20
	sleep 0.3
	is "$(delivered_subject "$1")" 1 "$2: delivered once"
	local f
	for f in "$SINK_DIR"/*; do
		if [ "$(header_of "$f" Subject)" = "$1" ]; then
			like "$(header_of "$f" Authentication-Results)" '^mx\.mxw\.test;' \
				"$2: with the proxy's Authentication-Results"
			return
		fi
	done
}

# ---- Python's smtplib ----
out=$(PORT=$P1 pysmtp plain py-plain)
like "$out" 'result all' "smtplib plain: sendmail accepted"
like "$out" 'features .*pipelining' "smtplib plain: PIPELINING offered"
unlike "$out" 'features .*(chunking|xclient)' "smtplib plain: no CHUNKING, no XCLIENT offered"
one_copy py-plain "smtplib plain"

out=$(PORT=$P1 pysmtp starttls py-starttls)
like "$out" 'before .*starttls' "smtplib: STARTTLS offered"
like "$out" 'tls TLSv1\.[23]' "smtplib: STARTTLS handshake"
like "$out" 'result all' "smtplib STARTTLS: sendmail accepted"
one_copy py-starttls "smtplib STARTTLS"

out=$(PORT=$P1TLS pysmtp ssl py-ssl)
like "$out" 'tls TLSv1\.[23]' "smtplib SMTP_SSL: implicit TLS handshake"
like "$out" 'result all' "smtplib SMTP_SSL: sendmail accepted"
one_copy py-ssl "smtplib SMTP_SSL"

out=$(PORT=$P1 pysmtp plain py-refused a@mx.sender.test u@local.test x@elsewhere.test)
like "$out" 'result x@elsewhere\.test=554$' "smtplib: one recipient refused (554), the other accepted"
one_copy py-refused "smtplib with a refused recipient"

n0=$(count_sink)
out=$(PORT=$P1 pysmtp plain py-nx a@nx.sender.test)
like "$out" 'error SMTPSenderRefused 550 5\.1\.8 ' "smtplib: nonexistent sender domain: SMTPSenderRefused 550"
sleep 0.5
is "$(delivered_subject py-nx)" 0 "smtplib: refused sender not delivered"

# ---- swaks --pipeline ----
f=$(mail_file swpipe "From: <a@mx.sender.test>" "To: <u@local.test>" "Subject: swaks-pipeline")
r=$(pmail 127.0.0.8 swaks.test a@mx.sender.test u@local.test "$f" --pipeline)
like "$r" "$PF_BDAT_250" "swaks --pipeline: accepted"
grep -q 'PIPELINING' "$MXW_RUN/swaks.log" && ok "swaks saw PIPELINING offered" ||
	not_ok "swaks saw PIPELINING offered"
one_copy swaks-pipeline "swaks --pipeline"
f=$(mail_file swpipe2 "From: <a@mx.sender.test>" "To: <u@local.test>" "Subject: swaks-pipeline-2")
r=$(pmail 127.0.0.8 swaks.test a@mx.sender.test u@local.test,x@elsewhere.test "$f" --pipeline)
like "$r" "$PF_BDAT_250" "swaks --pipeline, one recipient refused: the other accepted"
like "$(tail -40 "$MXW_RUN/swaks.log")" '554 5\.7\.1 [^
]*Relay access denied' "swaks --pipeline: the refused recipient's 554 in order"
one_copy swaks-pipeline-2 "swaks --pipeline with a refused recipient"

# ---- a client Postfix whose relayhost is the proxy ----
# start_client_postfix NAME [MAIN-LINES] - a Postfix relaying everything
# to [127.0.0.1]:$P1; sets C_SMTP, C_QUEUE, C_LOG.
start_client_postfix() {
	local run=$MXW_RUN/$1
	mkdir -p "$run"
	local master=
	# The test template has no tlsmgr; Postfix's TLS client needs it.
	# It is in master.cf from the start (a reload to add it has been
	# seen to leave an smtpd that never greets).
	[ -n "${2:-}" ] && master='tlsmgr unix - - n 1000? 1 tlsmgr'
	PF_EXTRA_MAIN="myhostname = $1.client.test
smtp_bind_address = 127.0.0.9
${2:-}"
	PF_EXTRA_MASTER=$master SINK_PORT=$P1 start_postfix "$run" "" || return 1
	C_SMTP=$SMTP_PORT C_QUEUE=$PF_QUEUE C_LOG=$run/postfix.log
}

# via_client SUBJECT FROM - submit to the client Postfix; prints the reply.
via_client() {
	local f
	f=$(mail_file "$1" "From: <$2>" "To: <u@local.test>" "Subject: $1")
	SMTP_PORT=$C_SMTP send_mail 127.0.0.5 submit.test "$2" u@local.test "$f"
}

# wait_log FILE REGEX [SECONDS] - until FILE has a line matching REGEX.
wait_log() {
	local i
	for ((i = 0; i < ${3:-30} * 10; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

for mode in plain tls; do
	extra=
	[ $mode = tls ] && extra="smtp_tls_security_level = encrypt
smtp_tls_loglevel = 1"
	if ! start_client_postfix "cpf-$mode" "$extra"; then
		not_ok "client Postfix ($mode) starts"
		continue
	fi
	r=$(via_client "relayed-$mode" a@mx.sender.test)
	like "$r" '^250 2\.0\.0 Ok: queued as ' "client Postfix ($mode): accepts the submission"
	one_copy "relayed-$mode" "client Postfix ($mode) through the proxy"
	if wait_log "$C_LOG" 'status=sent \(250 2\.0\.0 Ok: [0-9]+ bytes queued as ' 20; then
		ok "client Postfix ($mode): status=sent with the backend's 250"
	else
		not_ok "client Postfix ($mode): status=sent with the backend's 250" "$(tail -5 "$C_LOG")"
	fi
	like "$(grep -E 'relay=127\.0\.0\.1\[127\.0\.0\.1\]:'"$P1" "$C_LOG" | head -1)" 'status=sent' \
		"client Postfix ($mode): relayed through the proxy's port"
	if [ $mode = tls ]; then
		grep -qE 'TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:'"$P1" "$C_LOG" &&
			ok "client Postfix: STARTTLS to the proxy" ||
			not_ok "client Postfix: STARTTLS to the proxy" "$(grep -i tls "$C_LOG" | tail -5)"
		grep -q 'proxy: \[127\.0\.0\.9\]:[0-9]* TLS established: TLSv1\.[23]' "$MXW_RUN/c1/mxwarden.log" &&
			ok "client Postfix: the proxy logs its TLS session" ||
			not_ok "client Postfix: the proxy logs its TLS session"
	fi
	d=
	for f in "$SINK_DIR"/*; do
		[ "$(header_of "$f" Subject)" = "relayed-$mode" ] && d=$f
	done
	if [ -n "$d" ]; then
		like "$(header_of "$d" Received 2)" "from cpf-$mode\\.client\\.test \\(.*\\[127\\.0\\.0\\.9\\]\\)" \
			"client Postfix ($mode): the backend names the client Postfix (XCLIENT)"
	else
		not_ok "client Postfix ($mode): delivered copy found"
	fi
	# A sender the proxy refuses: the client Postfix bounces with our 5xx.
	r=$(via_client "bounced-$mode" a@nx.sender.test)
	like "$r" '^250 ' "client Postfix ($mode): accepts a doomed submission"
	if wait_log "$C_LOG" 'said: 550 5\.1\.8 Sender address rejected: domain nx\.sender\.test does not exist' 20; then
		ok "client Postfix ($mode): gets the proxy's 550 5.1.8"
	else
		not_ok "client Postfix ($mode): gets the proxy's 550 5.1.8" "$(tail -5 "$C_LOG")"
	fi
	wait_log "$C_LOG" 'status=bounced' 10
	grep -q 'status=bounced' "$C_LOG" && ok "client Postfix ($mode): message bounced, not retried" ||
		not_ok "client Postfix ($mode): message bounced, not retried"
	is "$(delivered_subject "bounced-$mode")" 0 "client Postfix ($mode): refused message not delivered"
	PF_QUEUE=$C_QUEUE
	for ((i = 0; i < 50 && $(postfix_queue_count) > 0; i++)); do sleep 0.2; done
	stop_postfix "$C_QUEUE"
done

# ---- the total connection limit ----
if start_proxy c2 "127.0.0.1:$B_SMTP" "proxy_max_connections = 2"; then
	out=$(/usr/bin/python3 "$PROXY_HELPERS/conns.py" "$PROXY_PORT" hold:127.0.0.21 \
		hold:127.0.0.22 try:127.0.0.23)
	like "$(printf '%s\n' "$out" | sed -n 1,2p | tr '\n' ' ')" '^127\.0\.0\.21 220 .*127\.0\.0\.22 220 ' \
		"total limit 2: the first two connections get the banner"
	like "$(printf '%s\n' "$out" | sed -n 3p)" '^127\.0\.0\.23 421 4\.7\.0 ' \
		"total limit 2: the 3rd connection (another IP) gets 421 4.7.0"
	sleep 0.5
	out=$(smtpc "$PROXY_PORT" --ip 127.0.0.24 send:'QUIT\r\n' reply)
	like "$out" '^220 ' "total limit: a slot is free again once they closed"
	stop_pid "$PROXY_PID" 20
else
	not_ok "proxy with proxy_max_connections = 2 starts"
fi

stop_pid "$P1_PID" 20
is "$MXW_STOP_STATUS" 0 "proxy stops cleanly on SIGTERM"
if grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' \
	"$MXW_RUN/c1/mxwarden.log" "$MXW_RUN/c2/mxwarden.log" >/dev/null 2>&1; then
	not_ok "no sanitizer report" "$(grep -h -A10 -E 'Sanitizer|runtime error' \
		"$MXW_RUN/c1/mxwarden.log" "$MXW_RUN/c2/mxwarden.log" | head -30)"
else
	ok "no sanitizer report"
fi
done_testing
