#!/usr/bin/env bash
# cli.sh - the command line as an administrator uses it: configtest on
# good and bad files (every error as file:line), defaults, check's exit
# codes and JSON on a real DNS server, bad input to check.
. "$(dirname "$0")/lib.sh"
mxw_rundir
cd "$MXW_TOP" || exit 1
MXW=$MXW_BIN/mxwarden

# The shipped config names the demo TLS pair that `make run` makes in
# var/tls; configtest loads TLS files as the proxy would, so the pair is
# made here and named by overrides.
mkdir -p "$MXW_RUN/tls" "$MXW_RUN/tls2"
for d in tls tls2; do
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.mxw.test \
		-keyout "$MXW_RUN/$d/key.pem" -out "$MXW_RUN/$d/cert.pem" \
		>"$MXW_RUN/$d/openssl.log" 2>&1
done
TLS_OK=(-o "tls_cert_file=$MXW_RUN/tls/cert.pem" -o "tls_key_file=$MXW_RUN/tls/key.pem")
out=$("$MXW" configtest -c contrib/mxwarden.conf "${TLS_OK[@]}" 2>&1); rc=$?
is "$rc" 0 "configtest accepts the shipped config (with its TLS pair made)"
like "$out" "configuration ok" "configtest says ok"

# TLS settings are checked as `mxwarden proxy` would at start-up.
out=$("$MXW" configtest -c contrib/mxwarden.conf \
	-o "tls_cert_file=$MXW_RUN/none/cert.pem" 2>&1); rc=$?
is "$rc" 1 "configtest: a missing certificate file is an error"
like "$out" "tls_cert_file $MXW_RUN/none/cert.pem" "... naming the file"
out=$("$MXW" configtest -c contrib/mxwarden.conf \
	-o "tls_cert_file=$MXW_RUN/tls/cert.pem" \
	-o "tls_key_file=$MXW_RUN/tls2/key.pem" 2>&1); rc=$?
is "$rc" 1 "configtest: a key that does not match the certificate is an error"
out=$("$MXW" configtest -c contrib/mxwarden.conf -o tls_cert_file= \
	-o proxy_listen_tls=127.0.0.1:10465 2>&1); rc=$?
is "$rc" 1 "configtest: proxy_listen_tls without a certificate"
like "$out" "proxy_listen_tls needs tls_cert_file" "... is refused, saying why"
out=$("$MXW" configtest -c contrib/mxwarden.conf "${TLS_OK[@]}" \
	-o "proxy_trusted_upstreams=10.0.0.0/33" 2>&1); rc=$?
is "$rc" 1 "configtest: a bad proxy_trusted_upstreams entry is an error"

cat >"$MXW_RUN/bad.conf" <<CONF
hostname = mx.example.org
no_such_key = 1
dns_timeout = soon
rules_file = $MXW_RUN/bad.rules
CONF
cat >"$MXW_RUN/bad.rules" <<RULES
score SPF_FAIL 3
score SPF_FAIL 4
action X reject "250 fine"
RULES
out=$("$MXW" configtest -c "$MXW_RUN/bad.conf" 2>&1); rc=$?
is "$rc" 1 "configtest fails on a bad config"
like "$out" "bad.conf:2: unknown key \"no_such_key\"" "unknown key with file:line"
like "$out" "bad.conf:3: dns_timeout: not a duration" "bad value with file:line"

sed -i '/no_such_key/d; /dns_timeout/d' "$MXW_RUN/bad.conf"
out=$("$MXW" configtest -c "$MXW_RUN/bad.conf" 2>&1); rc=$?
is "$rc" 1 "configtest fails on bad rules"
like "$out" "bad.rules:2: score SPF_FAIL already set at line 1" "duplicate score with file:line"
like "$out" "bad.rules:3: malformed reply" "bad reply with file:line"

out=$("$MXW" configtest -c "$MXW_RUN/none.conf" 2>&1); rc=$?
is "$rc" 1 "configtest fails on a missing file"
like "$out" "none.conf: cannot open" "missing file is named"

out=$("$MXW" defaults 2>&1); rc=$?
is "$rc" 0 "defaults runs"
like "$out" "milter_socket = inet:8891@127.0.0.1" "defaults shows the milter socket"

out=$("$MXW" frobnicate 2>&1); rc=$?
is "$rc" 2 "an unknown command exits 2"

# check against the real DNS server.
start_dns "$MXW_RUN" || { done_testing; exit; }
mxw_write_conf "$MXW_RUN" 1
conf=$MXW_RUN/mxwarden.conf
printf 'From: <a@nonexistent.mxw.test>\nSubject: hi\n\nbody\n' >"$MXW_RUN/m1.eml"
out=$("$MXW" check -c "$conf" --ip 127.0.0.10 --helo good10.iprev.test \
	--from a@nonexistent.mxw.test --rcpt b@local.test --json <"$MXW_RUN/m1.eml")
rc=$?
is "$rc" 1 "check exits 1 for a rejected message"
like "$out" '"stage":"mail"' "rejected at MAIL, as the daemon would"
like "$out" '"code":"550","xcode":"5.1.8"' "with 550 5.1.8"
like "$out" '"name":"SENDER_NXDOMAIN"' "SENDER_NXDOMAIN in the symbols"
if command -v python3 >/dev/null; then
	echo "$out" | python3 -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null
	is "$?" 0 "--json output is valid JSON"
fi

# --tls plays a TLS session for rules on the tls target.
printf 'rule T_TLS13 tls /^TLSv1\\.3 TLS_AES_/ score 0.5\nrule T_NOTLS tls /^none$/ score 0.5\n' \
	>"$MXW_RUN/tls.rules"
printf 'From: <a@mx.sender.test>\nSubject: hi\n\nbody\n' >"$MXW_RUN/m2.eml"
tls_syms() {
	"$MXW" check -c "$conf" -o local_rules_file="$MXW_RUN/tls.rules" \
		--ip 127.0.0.10 --helo good10.iprev.test --rcpt b@local.test \
		--json "$@" <"$MXW_RUN/m2.eml" | grep -oE '"name":"T_[A-Z0-9]+"' | tr '\n' ' '
}
is "$(tls_syms --tls 'TLSv1.3 TLS_AES_256_GCM_SHA384')" '"name":"T_TLS13" ' \
	"check --tls: the session is in TLS for the rules"
is "$(tls_syms)" '"name":"T_NOTLS" ' "check without --tls: tls is none"

head -c 3000000 /dev/urandom | base64 >"$MXW_RUN/big.eml"
printf '\0\0\0garbage\r\r\n\n' >>"$MXW_RUN/big.eml"
"$MXW" check -c "$conf" --ip 127.0.0.10 --from a@nonexistent.mxw.test \
	<"$MXW_RUN/big.eml" >/dev/null 2>&1
rc=$?
is "$rc" 1 "garbage input gets a verdict, not a crash"

done_testing
