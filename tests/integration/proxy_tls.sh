#!/usr/bin/env bash
# proxy_tls.sh - TLS and AUTH in the SMTP proxy: STARTTLS (offered only
# with a certificate, the session reset after it, plaintext injected
# after STARTTLS discarded), implicit TLS (465-style listener), the key
# read before the privilege drop, tls_min_version, and AUTH relayed to
# a backend only inside TLS; the client's TLS version and cipher given
# to the engine (a rule on the tls target, the summary log line; also
# in milter mode behind a Postfix port with STARTTLS);
# STARTTLS to the backend
# (proxy_backend_tls = yes, more Postfix ports with TLS), its
# certificate verified against a CA made here (right and wrong name,
# IP address, unknown CA, a pinned self-signed certificate, bad CA
# files) or, without a CA file, unverified.
#
# Backends: a private Postfix (XCLIENT authorized) relaying to
# smtp-sink for delivery; for AUTH a scripted backend
# (proxy/auth_backend.py), because a Postfix with SASL needs Dovecot or
# Cyrus, which this suite does not set up.
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=proxy_tls

mxw_require "to run a private Postfix" postfix smtp-sink swaks openssl /usr/bin/python3
mxw_rundir
. "$MXW_TOP/tests/integration/proxy/common.sh"

# codes OUTPUT - the final reply codes, one line each, joined by spaces.
codes() { printf '%s\n' "$1" | grep -E '^[0-9]{3} |^TLS|^EOF|^TIMEOUT' |
	sed -E 's/^([0-9]{3}) .*/\1/; s/^TLS-ERROR.*/TLSERR/; s/^TLS .*/TLS/' |
	tr '\n' ' '; }

# spam_tests FILE - the symbols of FILE's X-Spam-Status as ",A,B,".
spam_tests() { header_of "$1" X-Spam-Status | sed -n 's/.*tests=\([^ ]*\).*/,\1,/p'; }
# tls_rule_case LABEL PORT IP FIRES SILENT [SWAKS...] - one message $f
# through PORT (the proxy, or the milter Postfix): delivered (Postfix's
# 250, to the proxy's BDAT or to the client's DATA), the rule FIRES in
# its symbols, SILENT not.
tls_rule_case() {
	local label=$1 port=$2 ip=$3 fires=$4 silent=$5 r st n0
	shift 5
	n0=$(count_sink)
	r=$(PMAIL_PORT=$port pmail "$ip" client.test a@sender.test u@local.test "$f" "$@")
	like "$r" '^250 2\.0\.0 Ok: ([0-9]+ bytes )?queued as ' "$label: delivered"
	if wait_delivered $((n0 + 1)); then
		st=$(spam_tests "$(delivered_file $((n0 + 1)))")
		like "$st" ",$fires," "$label: the rule $fires fires"
		unlike "$st" ",$silent," "$label: the rule $silent does not"
	else
		not_ok "$label: message delivered"
	fi
}

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
mkdir -p "$MXW_RUN/tls"
if ! make_cert "$MXW_RUN/tls"; then
	not_ok "openssl makes a self-signed pair" "$(cat "$MXW_RUN/tls/openssl.log")"
	done_testing
fi
# The key is root's alone: only a read before the drop can work.
chown root:root "$MXW_RUN/tls/key.pem"
# Rules on the tls target ("VERSION CIPHER" or "none"); score 0 so
# no verdict changes.
TLS_RULES='rule TEST_NO_TLS tls /^none$/ score 0
rule TEST_TLS tls /^TLSv1\.[23] [A-Z0-9_-]+$/ score 0'
PROXY_RULES=$TLS_RULES
if start_proxy t1 "127.0.0.1:$SMTP_PORT" \
	"tls_cert_file = $MXW_RUN/tls/cert.pem" \
	"tls_key_file = $MXW_RUN/tls/key.pem" \
	"proxy_listen_tls = @TLS@"; then
	ok "proxy with TLS starts (key readable by root only, user nobody)"
else
	not_ok "proxy with TLS starts" "$(tail -20 "$MXW_RUN/t1/mxwarden.log")"
	done_testing
fi
PROXY_RULES=
P1=$PROXY_PORT
P1TLS=$PROXY_TLS_PORT
LOG1=$MXW_RUN/t1/mxwarden.log

f=$(mail_file tls "From: <a@sender.test>" "To: <u@local.test>" "Subject: over tls")

# ---- EHLO offers STARTTLS, not AUTH (no TLS yet) ----
out=$(smtpc "$P1" send:'EHLO a.test\r\n' reply send:'QUIT\r\n' reply)
like "$out" '250-STARTTLS' "STARTTLS offered in plaintext EHLO"
unlike "$out" 'AUTH' "no AUTH offered before TLS"

# ---- swaks --tls: delivered, TLS logged and given to the engine ----
n0=$(count_sink)
r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$f" --tls)
like "$r" "$PF_BDAT_250" "STARTTLS session: backend's 250 passed on"
if wait_delivered $((n0 + 1)); then
	d=$(delivered_file $((n0 + 1)))
	is "$(header_of "$d" Subject)" "over tls" "message over TLS delivered intact"
	like "$(header_of "$d" Received 2)" 'from client\.test \(.*127\.0\.0\.5\]' \
		"backend sees the real client after STARTTLS (XCLIENT)"
else
	not_ok "message over TLS delivered"
fi
like "$(grep 'TLS established' "$LOG1" | head -1)" 'TLS established: TLSv1\.[23] [A-Z0-9_-]+' \
	"TLS version and cipher logged"
like "$(grep 'disconnect from \[127\.0\.0\.5\]' "$LOG1" | tail -1)" 'tls=TLSv1\.[23]' \
	"TLS version reached the transaction (txn_set_tls)"
if [ -n "${d:-}" ]; then
	st=$(spam_tests "$d")
	like "$st" ',TEST_TLS,' "STARTTLS session: the rule on the tls target fires"
	unlike "$st" ',TEST_NO_TLS,' "STARTTLS session: the rule on tls = none does not"
fi
like "$(grep 'from=<a@sender\.test> .*stage=eom symbols=' "$LOG1" | tail -1)" \
	' tls=TLSv1\.[23]/[A-Z0-9_-]+ stage=eom symbols=.*TEST_TLS\(0\.0\)' \
	"summary log line: tls=VERSION/CIPHER and the tls rule's symbol"

# ---- the same proxy without STARTTLS: tls is "none" ----
d=
tls_rule_case "plain session" "$P1" 127.0.0.7 TEST_NO_TLS TEST_TLS
plain=$(grep '\[127\.0\.0\.7\]:[0-9]* .*stage=eom symbols=' "$LOG1" | tail -1)
like "$plain" 'TEST_NO_TLS\(0\.0\)' "plain session: summary log line has the symbol"
unlike "$plain" ' tls=' "plain session: summary log line has no tls="

# ---- RFC 3207: after STARTTLS the session starts afresh ----
out=$(smtpc "$P1" send:'EHLO a.test\r\n' reply send:'STARTTLS\r\n' reply tls \
	send:'MAIL FROM:<a@sender.test>\r\n' reply send:'EHLO a.test\r\n' reply \
	send:'QUIT\r\n' reply)
is "$(codes "$out")" "220 250 220 TLS 503 250 221 " \
	"after STARTTLS: HELO forgotten (503), EHLO again works"
like "$out" '503 5\.5\.1 Error: send HELO/EHLO first' "503 asks for a new EHLO"
unlike "$(printf '%s\n' "$out" | sed -n '/^TLS/,$p')" 'STARTTLS' \
	"STARTTLS not offered again inside TLS"

# ---- command injection: plaintext after STARTTLS is discarded ----
out=$(smtpc "$P1" send:'EHLO a.test\r\n' reply \
	send:'STARTTLS\r\nEHLO injected.test\r\n' reply tls \
	send:'MAIL FROM:<a@sender.test>\r\n' reply send:'QUIT\r\n' reply)
is "$(codes "$out")" "220 250 220 TLS 503 221 " \
	"injected EHLO after STARTTLS not executed inside TLS"
grep -q 'STARTTLS PIPELINING: 20 plaintext bytes after STARTTLS discarded' "$LOG1" &&
	ok "injection logged (STARTTLS PIPELINING, 20 bytes)" ||
	not_ok "injection logged (STARTTLS PIPELINING, 20 bytes)" "$(grep STARTTLS "$LOG1")"
out=$(smtpc "$P1" send:'EHLO a.test\r\n' reply \
	send:'STARTTLS\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<u@local.test>\r\n' reply tls \
	send:'EHLO a.test\r\n' reply send:'RCPT TO:<u@local.test>\r\n' reply \
	send:'QUIT\r\n' reply)
is "$(codes "$out")" "220 250 220 TLS 250 503 221 " \
	"injected MAIL after STARTTLS leaves no transaction inside TLS"

# ---- STARTTLS syntax and state ----
out=$(smtpc "$P1" send:'EHLO a.test\r\n' reply send:'STARTTLS now\r\n' reply \
	send:'MAIL FROM:<a@sender.test>\r\n' reply send:'STARTTLS\r\n' reply \
	send:'QUIT\r\n' reply)
is "$(codes "$out")" "220 250 501 250 503 221 " \
	"STARTTLS with an argument: 501; inside a transaction: 503"
out=$(smtpc "$P1" send:'EHLO a.test\r\n' reply send:'STARTTLS\r\n' reply \
	send:'this is no TLS handshake\r\n' drain)
like "$(codes "$out")" '^220 250 220 EOF $' "garbage instead of a handshake: connection closed"

# ---- implicit TLS listener ----
n0=$(count_sink)
r=$(PMAIL_PORT=$P1TLS pmail 127.0.0.5 client.test a@sender.test u@local.test "$f" --tlsc)
like "$r" "$PF_BDAT_250" "implicit TLS (swaks --tlsc): delivered"
wait_delivered $((n0 + 1)) 10
is "$(count_sink)" $((n0 + 1)) "implicit-TLS message arrives once"
out=$(smtpc "$P1TLS" --implicit-tls send:'EHLO a.test\r\n' reply send:'QUIT\r\n' reply)
like "$(codes "$out")" '^TLS 220 250 221 $' "implicit TLS: banner inside TLS"
unlike "$out" 'STARTTLS' "implicit TLS: STARTTLS not offered"
out=$(smtpc "$P1TLS" send:'EHLO plain.test\r\n' drain)
unlike "$out" '^250' "plaintext on the implicit-TLS port gets no SMTP"

# ---- no certificate: no STARTTLS ----
if start_proxy t0 "127.0.0.1:$SMTP_PORT"; then
	out=$(smtpc "$PROXY_PORT" send:'EHLO a.test\r\n' reply send:'STARTTLS\r\n' reply \
		send:'QUIT\r\n' reply)
	unlike "$out" 'STARTTLS' "without tls_cert_file STARTTLS is not offered" 
	like "$out" '502 5\.5\.1 ' "without tls_cert_file STARTTLS gets 502"
else
	not_ok "proxy without TLS starts"
fi

# ---- a bad key file stops the start ----
printf 'not a key\n' >"$MXW_RUN/tls/bad.pem"
mkdir -p "$MXW_RUN/t9"
mxw_write_conf "$MXW_RUN/t9" "$(free_port)" "proxy_listen = 127.0.0.1:$(free_port)" \
	"user = nobody" "tls_cert_file = $MXW_RUN/tls/cert.pem" \
	"tls_key_file = $MXW_RUN/tls/bad.pem"
timeout 20 "$MXW_BIN/mxwarden" proxy -f -c "$MXW_RUN/t9/mxwarden.conf" >"$MXW_RUN/t9/log" 2>&1
rc=$?
if [ "$rc" != 0 ] && grep -q 'tls_key_file' "$MXW_RUN/t9/log"; then
	ok "unusable key: proxy refuses to start, says why"
else
	not_ok "unusable key: proxy refuses to start, says why" "rc=$rc" "$(cat "$MXW_RUN/t9/log")"
fi

# ---- TLS to the backend ----
# A test CA and a backend certificate it signed (DNS backend.mxw.test and
# IP 127.0.0.1), and a second CA that signed nothing the backend shows.
make_ca_certs() {
	local d=$1
	{
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
			-subj "/CN=mxwarden test CA" -keyout "$d/ca.key" -out "$d/ca.pem" \
			-addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign &&
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
			-subj "/CN=mxwarden other CA" -keyout "$d/other-ca.key" \
			-out "$d/other-ca.pem" -addext basicConstraints=critical,CA:TRUE &&
		openssl req -new -newkey rsa:2048 -nodes -subj /CN=backend.mxw.test \
			-keyout "$d/be.key" -out "$d/be.csr" &&
		printf '%s\n' "subjectAltName = DNS:backend.mxw.test, IP:127.0.0.1" \
			"extendedKeyUsage = serverAuth" "basicConstraints = CA:FALSE" \
			>"$d/be.ext" &&
		openssl x509 -req -in "$d/be.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
			-CAcreateserial -days 2 -extfile "$d/be.ext" -out "$d/be.pem"
	} >"$d/ca.log" 2>&1 || return 1
	chmod 600 "$d/be.key" "$d/ca.key" "$d/other-ca.key"
}
mkdir -p "$MXW_RUN/ca"
make_ca_certs "$MXW_RUN/ca" || not_ok "openssl makes a test CA" "$(cat "$MXW_RUN/ca/ca.log")"
TLSPF_PORT=$(free_port)
CAPF_PORT=$(free_port)
cat >>"$PF_CONF/master.cf" <<EOM
$TLSPF_PORT inet n - n - - smtpd
  -o smtpd_tls_security_level=may
  -o smtpd_tls_cert_file=$MXW_RUN/tls/cert.pem
  -o smtpd_tls_key_file=$MXW_RUN/tls/key.pem
  -o smtpd_tls_received_header=yes
$CAPF_PORT inet n - n - - smtpd
  -o smtpd_tls_security_level=may
  -o smtpd_tls_cert_file=$MXW_RUN/ca/be.pem
  -o smtpd_tls_key_file=$MXW_RUN/ca/be.key
  -o smtpd_tls_received_header=yes
tlsmgr unix - - n 1000? 1 tlsmgr
EOM
PATH=$PATH:/usr/sbin timeout 60 postfix -c "$PF_CONF" reload >/dev/null 2>&1
wait_port "$CAPF_PORT" 20 || not_ok "backend Postfix listens on the CA-signed TLS port"
if wait_port "$TLSPF_PORT" 20 &&
	start_proxy t3 "127.0.0.1:$TLSPF_PORT" "proxy_backend_tls = yes"; then
	n0=$(count_sink)
	r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$f")
	like "$r" "$PF_BDAT_250" "proxy_backend_tls: Postfix over TLS accepts"
	if wait_delivered $((n0 + 1)); then
		d=$(delivered_file $((n0 + 1)))
		like "$(header_of "$d" Received 2)" 'using TLSv1\.[23] with cipher' \
			"proxy_backend_tls: the backend's Received shows TLS"
		like "$(header_of "$d" Received 2)" 'from client\.test \(.*127\.0\.0\.5\]' \
			"proxy_backend_tls: XCLIENT after STARTTLS names the real client"
	else
		not_ok "proxy_backend_tls: message delivered"
	fi
	grep -q 'TLS to backend 127\.0\.0\.1:[0-9]*: TLSv1\.[23] ' "$MXW_RUN/t3/mxwarden.log" &&
		ok "TLS to the backend logged" || not_ok "TLS to the backend logged"
	like "$(grep 'TLS to backend' "$MXW_RUN/t3/mxwarden.log" | tail -1)" \
		'TLSv1\.[23] [A-Z0-9_-]+, unverified$' \
		"no proxy_backend_tls_ca_file: the handshake's log line says unverified"
	grep -q 'will not be verified (no proxy_backend_tls_ca_file)' "$MXW_RUN/t3/mxwarden.log" &&
		ok "no proxy_backend_tls_ca_file: start-up warns that nothing is verified" ||
		not_ok "no proxy_backend_tls_ca_file: start-up warns that nothing is verified"
	stop_pid "$PROXY_PID"
else
	not_ok "proxy with TLS to a Postfix TLS port starts"
fi

# be_verified NAME PORT WANT [LINE...] - a proxy to the backend PORT
# with the test CA (and LINEs): mail is delivered over TLS and the log
# line after the handshake matches WANT.
be_verified() {
	local name=$1 port=$2 want=$3 n0 r
	shift 3
	if ! start_proxy "$name" "127.0.0.1:$port" "proxy_backend_tls = yes" "$@"; then
		not_ok "$name: proxy with a CA file starts" "$(tail -5 "$MXW_RUN/$name/mxwarden.log")"
		return
	fi
	n0=$(count_sink)
	r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$f")
	like "$r" "$PF_BDAT_250" "$name: verified backend accepts the message"
	if wait_delivered $((n0 + 1)); then
		like "$(header_of "$(delivered_file $((n0 + 1)))" Received 2)" \
			'using TLSv1\.[23] with cipher' "$name: delivered over TLS"
	else
		not_ok "$name: message delivered"
	fi
	like "$(grep 'TLS to backend' "$MXW_RUN/$name/mxwarden.log" | tail -1)" "$want" \
		"$name: the handshake's log line says verified"
	stop_pid "$PROXY_PID"
}

# be_refused NAME PORT WANT [LINE...] - the backend's certificate does
# not verify: the client gets 421 4.4.2, nothing is delivered, and the
# BACKEND FAILURE line gives OpenSSL's reason (matching WANT).
be_refused() {
	local name=$1 port=$2 want=$3 n0 r out
	shift 3
	if ! start_proxy "$name" "127.0.0.1:$port" "proxy_backend_tls = yes" "$@"; then
		not_ok "$name: proxy with a CA file starts" "$(tail -5 "$MXW_RUN/$name/mxwarden.log")"
		return
	fi
	n0=$(count_sink)
	out=$(smtpc "$PROXY_PORT" send:'QUIT\r\n' drain)
	like "$out" '^421 4\.4\.2 ' "$name: 421 4.4.2 to the client"
	r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$f")
	like "$r" '^421 4\.4\.2 ' "$name: a message gets 421 too"
	sleep 1
	is "$(count_sink)" "$n0" "$name: nothing delivered"
	like "$(grep 'BACKEND FAILURE' "$MXW_RUN/$name/mxwarden.log" | tail -1)" \
		"at STARTTLS: TLS handshake: certificate not verified: $want" \
		"$name: the log says why"
	unlike "$(cat "$MXW_RUN/$name/mxwarden.log")" 'TLS to backend' \
		"$name: no TLS session to the backend logged"
	stop_pid "$PROXY_PID"
}

CA="proxy_backend_tls_ca_file = $MXW_RUN/ca/ca.pem"
be_verified ca-ip "$CAPF_PORT" ', verified \(address 127\.0\.0\.1\)$' "$CA"
be_verified ca-name "$CAPF_PORT" ', verified \(name backend\.mxw\.test\)$' "$CA" \
	"proxy_backend_tls_name = backend.mxw.test"
be_refused wrong-name "$CAPF_PORT" \
	'hostname mismatch \(expected name other\.mxw\.test\)$' "$CA" \
	"proxy_backend_tls_name = other.mxw.test"
be_refused wrong-ip "$CAPF_PORT" 'IP address mismatch \(expected address 127\.0\.0\.2\)$' \
	"$CA" "proxy_backend_tls_name = 127.0.0.2"
be_refused other-ca "$CAPF_PORT" 'unable to get local issuer certificate \(expected address 127\.0\.0\.1\)$' \
	"proxy_backend_tls_ca_file = $MXW_RUN/ca/other-ca.pem"
# A self-signed backend certificate given as the CA file is its own
# anchor (pinning); its CN is the name when it has no subjectAltName.
be_verified pinned "$TLSPF_PORT" ', verified \(name mx\.mxw\.test\)$' \
	"proxy_backend_tls_ca_file = $MXW_RUN/tls/cert.pem" \
	"proxy_backend_tls_name = mx.mxw.test"
be_refused unpinned "$TLSPF_PORT" 'self-signed certificate' "$CA" \
	"proxy_backend_tls_name = mx.mxw.test"

# proxy_backend_tls_name follows a reload (SIGHUP): wrong, then right.
if start_proxy reload "127.0.0.1:$CAPF_PORT" "proxy_backend_tls = yes" "$CA" \
	"proxy_backend_tls_name = other.mxw.test"; then
	out=$(smtpc "$PROXY_PORT" send:'QUIT\r\n' drain)
	like "$out" '^421 4\.4\.2 ' "reload: the wrong name first gets 421"
	sed -i 's/^proxy_backend_tls_name = .*/proxy_backend_tls_name = backend.mxw.test/' \
		"$MXW_RUN/reload/mxwarden.conf"
	kill -HUP "$PROXY_PID"
	for ((i = 0; i < 100; i++)); do
		grep -qE 'reload: new configuration|reload refused' \
			"$MXW_RUN/reload/mxwarden.log" && break
		sleep 0.1
	done
	n0=$(count_sink)
	r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$f")
	like "$r" "$PF_BDAT_250" "reload: after SIGHUP the new name verifies"
	wait_delivered $((n0 + 1)) 10
	is "$(count_sink)" $((n0 + 1)) "reload: the message is delivered"
	stop_pid "$PROXY_PID"
else
	not_ok "reload: proxy with a CA file starts"
fi
san=$(cd "$MXW_RUN" && grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' \
	ca-ip/mxwarden.log ca-name/mxwarden.log wrong-name/mxwarden.log \
	wrong-ip/mxwarden.log other-ca/mxwarden.log pinned/mxwarden.log \
	unpinned/mxwarden.log reload/mxwarden.log 2>/dev/null)
is "$san" "" "verifying proxies: no sanitizer report"

# A bad CA file stops the start, with the file name and the reason.
printf 'no certificate here\n' >"$MXW_RUN/ca/garbage.pem"
for c in "missing:$MXW_RUN/ca/nonexistent.pem:No such file or directory" \
	"garbage:$MXW_RUN/ca/garbage.pem:no certificate"; do
	IFS=: read -r what file why <<<"$c"
	mkdir -p "$MXW_RUN/bad-$what"
	mxw_write_conf "$MXW_RUN/bad-$what" "$(free_port)" \
		"proxy_listen = 127.0.0.1:$(free_port)" "user = nobody" \
		"proxy_backend_tls = yes" "proxy_backend_tls_ca_file = $file"
	timeout 20 "$MXW_BIN/mxwarden" proxy -f -c "$MXW_RUN/bad-$what/mxwarden.conf" \
		>"$MXW_RUN/bad-$what/log" 2>&1
	rc=$?
	if [ "$rc" != 0 ] &&
		grep -q "proxy_backend_tls_ca_file $file: .*$why" "$MXW_RUN/bad-$what/log"; then
		ok "$what CA file: proxy refuses to start, names the file and why"
	else
		not_ok "$what CA file: proxy refuses to start, names the file and why" \
			"rc=$rc" "$(cat "$MXW_RUN/bad-$what/log")"
	fi
done

if start_proxy t4 "127.0.0.1:$SMTP_PORT" "proxy_backend_tls = yes"; then
	out=$(smtpc "$PROXY_PORT" send:'QUIT\r\n' drain)
	like "$out" '^421 4\.4\.2 ' "proxy_backend_tls, backend without STARTTLS: 421"
	grep -q 'backend offers no STARTTLS' "$MXW_RUN/t4/mxwarden.log" &&
		ok "backend without STARTTLS: logged" || not_ok "backend without STARTTLS: logged"
else
	not_ok "proxy with TLS to a plain backend starts"
fi

# ---- AUTH through TLS to a scripted backend ----
ABE_PORT=$(free_port)
mkdir -p "$MXW_RUN/abe"
/usr/bin/python3 "$PROXY_HELPERS/auth_backend.py" "$ABE_PORT" "$MXW_RUN/abe/log" \
	"$MXW_RUN/abe" >"$MXW_RUN/abe/stderr" 2>&1 &
mxw_track_pid $! auth_backend
wait_port "$ABE_PORT" 10 || not_ok "scripted AUTH backend starts"
if start_proxy t2 "127.0.0.1:$ABE_PORT" "proxy_backend_forward = none" \
	"tls_cert_file = $MXW_RUN/tls/cert.pem" "tls_key_file = $MXW_RUN/tls/key.pem" \
	"tls_min_version = TLSv1.3"; then
	P2=$PROXY_PORT
	LOG2=$MXW_RUN/t2/mxwarden.log
	out=$(smtpc "$P2" send:'EHLO a.test\r\n' reply send:'AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n' reply \
		send:'QUIT\r\n' reply)
	like "$out" '530 5\.7\.0 Must issue a STARTTLS command first' "AUTH before TLS: 530"
	unlike "$(cat "$MXW_RUN/abe/log")" '^C: AUTH' "AUTH before TLS never reaches the backend"
	out=$(smtpc "$P2" send:'EHLO a.test\r\n' reply send:'STARTTLS\r\n' reply tls \
		send:'EHLO a.test\r\n' reply send:'QUIT\r\n' reply)
	like "$out" '250-AUTH PLAIN LOGIN' "AUTH offered inside TLS (backend's mechanisms)"
	r=$(PMAIL_PORT=$P2 pmail 127.0.0.5 client.test a@sender.test u@local.test "$f" \
		--tls --auth PLAIN --auth-user alice --auth-password secret)
	like "$r" '^250 2\.0\.0 Ok: queued as SCRIPT' "AUTH PLAIN in TLS: authenticated session delivers"
	grep -q 'AUTH PLAIN user=alice: backend 235' "$LOG2" &&
		ok "235 from the backend marks the session authenticated (logged)" ||
		not_ok "235 from the backend marks the session authenticated (logged)"
	grep -q 'authenticated as alice' "$LOG2" &&
		ok "the engine sees the authenticated user (txn_set_auth)" ||
		not_ok "the engine sees the authenticated user (txn_set_auth)" "$(grep -i auth "$LOG2")"
	grep -q 'secret\|AGFsaWNlAHNlY3JldA' "$LOG2" &&
		not_ok "no credentials in the proxy's log" || ok "no credentials in the proxy's log"
	r=$(PMAIL_PORT=$P2 pmail 127.0.0.5 client.test a@sender.test u@local.test "$f" \
		--tls --auth LOGIN --auth-user alice --auth-password wrong)
	like "$r" '^535 5\.7\.8 ' "AUTH LOGIN with a wrong password: backend's 535 passed on"
	grep -q 'AUTH LOGIN user=alice failed: backend 535' "$LOG2" &&
		ok "failed AUTH logged with the user" || not_ok "failed AUTH logged with the user"
	out=$(smtpc "$P2" send:'EHLO a.test\r\n' reply send:'STARTTLS\r\n' reply tls:1.2)
	like "$out" 'TLS-ERROR' "tls_min_version = TLSv1.3 refuses a TLS 1.2 client"
else
	not_ok "proxy in front of the scripted AUTH backend starts"
fi

# ---- milter mode: Postfix's {tls_version} and {cipher} ----
# A Postfix port with STARTTLS whose milter is an mxwarden with the tls
# rules; the same two sessions as through the proxy.
mkdir -p "$MXW_RUN/m1"
cp "$MXW_RUN/unbound.conf" "$MXW_RUN/m1/"
printf '%s\n' "$TLS_RULES" >"$MXW_RUN/m1/local.rules"
MPF_PORT=$(free_port)
m1_up=0
if start_mxwarden "$MXW_RUN/m1"; then
	m1_up=1
	cat >>"$PF_CONF/master.cf" <<EOM
$MPF_PORT inet n - n - - smtpd
  -o smtpd_tls_security_level=may
  -o smtpd_tls_cert_file=$MXW_RUN/tls/cert.pem
  -o smtpd_tls_key_file=$MXW_RUN/tls/key.pem
  -o smtpd_milters=$MXW_MILTER
EOM
	PATH=$PATH:/usr/sbin timeout 60 postfix -c "$PF_CONF" reload >/dev/null 2>&1
fi
if [ "$m1_up" = 1 ] && wait_port "$MPF_PORT" 20; then
	MLOG=$MXW_RUN/m1/mxwarden.log
	tls_rule_case "milter, STARTTLS" "$MPF_PORT" 127.0.0.5 TEST_TLS TEST_NO_TLS --tls
	like "$(grep '\[127\.0\.0\.5\]:[0-9]* .*stage=eom symbols=' "$MLOG" | tail -1)" \
		' tls=TLSv1\.[23]/[A-Z0-9_-]+ stage=eom symbols=.*TEST_TLS\(0\.0\)' \
		"milter, STARTTLS: summary log line has tls=VERSION/CIPHER ({cipher} read)"
	tls_rule_case "milter, plain session" "$MPF_PORT" 127.0.0.7 TEST_NO_TLS TEST_TLS
	unlike "$(grep '\[127\.0\.0\.7\]:[0-9]* .*stage=eom symbols=' "$MLOG" | tail -1)" \
		' tls=' "milter, plain session: no tls= in the summary log line"
	stop_pid "$MXW_PID"
	unlike "$(cat "$MLOG")" 'Sanitizer|runtime error' "milter: no sanitizer report"
else
	not_ok "milter mxwarden behind a Postfix TLS port starts" \
		"$(tail -5 "$MXW_RUN/m1/mxwarden.log" 2>/dev/null)"
fi

done_testing
