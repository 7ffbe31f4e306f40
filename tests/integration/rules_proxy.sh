#!/usr/bin/env bash
# rules_proxy.sh - the rules corpus (tests/rules/corpus, the same
# NAME.expect files as rules.sh) through the SMTP proxy front end:
# `mxwarden proxy` in front of a private Postfix (XCLIENT authorized,
# no milter) relaying to smtp-sink. The client address of each message
# comes in a PROXY protocol v1 header from a trusted upstream
# (127.0.0.1), so the engine sees the corpus's 198.51.100.x /
# 2001:db8:... clients as `mxwarden check --ip` does.
#
# Checks as in rules_milter.sh (reply, stage, X-Spam-Status symbols or
# the summary log line, scores), then a reload of the proxy
# (`mxwarden reload`): a new rule takes effect for the next message.
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=rules_proxy

mxw_require "to run a private Postfix" postfix smtp-sink /usr/bin/python3
PY=/usr/bin/python3
mxw_rundir

CORPUS=$MXW_TOP/tests/rules/corpus
SEND=$MXW_TOP/tests/rules/smtp_send.py
. "$MXW_TOP/tests/integration/proxy/common.sh"
. "$MXW_TOP/tests/rules/corpus_lib.sh"

if ! start_dns "$MXW_RUN"; then
	not_ok "test DNS starts"; done_testing
fi
PF_EXTRA_MAIN="smtpd_authorized_xclient_hosts = 127.0.0.1
line_length_limit = 65536
inet_protocols = all"
if ! start_sink "$MXW_RUN" || ! start_postfix "$MXW_RUN" ""; then
	not_ok "Postfix and smtp-sink start" "$(tail -20 "$MXW_RUN/postfix.log")"
	done_testing
fi
# The proxy runs as nobody: its state database lives in its own folder.
mkdir -p "$MXW_RUN/p1" && chown nobody "$MXW_RUN/p1"
PROXY_RULES=$(cat "$MXW_TOP/tests/rules/test.rules")
if ! start_proxy p1 "127.0.0.1:$SMTP_PORT" \
	"proxy_trusted_upstreams = 127.0.0.1/32" \
	"pid_file = $MXW_RUN/p1/mxwarden.pid"; then
	not_ok "proxy starts" "$(tail -20 "$MXW_RUN/p1/mxwarden.log")"
	done_testing
fi
ok "mxwarden proxy, Postfix and smtp-sink start"
LOG=$MXW_RUN/p1/mxwarden.log

# ---- the corpus ----
corpus_all proxy "$PROXY_PORT" "$LOG"

# ---- reload of the proxy ----
f=$MXW_RUN/reload.eml
printf 'From: Carol <carol@mx.sender.test>\nTo: bob@local.test\nSubject: r\n\nproxymarker\n' >"$f"
n0=$(count_sink)
r=$("$PY" "$SEND" one "$PROXY_PORT" 127.0.0.1 198.51.100.5 mail.sender.test \
	carol@mx.sender.test bob@local.test "$f" proxy)
wait_delivered $((n0 + 1)) 20
unlike "$(header_of "$(delivered_file $((n0 + 1)))" X-Spam-Status | tr -d ' \t')" \
	'NEW_PROXY_RULE' "proxy reload: before, no NEW_PROXY_RULE ($r)"
echo 'rule NEW_PROXY_RULE body /proxymarker/ action reject "550 5.7.1 Marked %{symbol}"' \
	>>"$MXW_RUN/p1/local.rules"
run_ok "proxy reload: mxwarden reload" "$MXW_BIN/mxwarden" reload -c "$MXW_RUN/p1/mxwarden.conf"
for ((i = 0; i < 100; i++)); do
	grep -q 'reload: new configuration' "$LOG" && break
	sleep 0.1
done
r=$("$PY" "$SEND" one "$PROXY_PORT" 127.0.0.1 198.51.100.5 mail.sender.test \
	carol@mx.sender.test bob@local.test "$f" proxy)
is "$r" "eom 550 5.7.1 Marked NEW_PROXY_RULE" "proxy reload: the new rule rejects the next message"

# SIGHUP reloads the proxy too (SPEC §4): a second rule, signalled so.
echo 'rule HUP_PROXY_RULE body /proxymarker/ action reject "550 5.7.1 Hup %{symbol}"' \
	>>"$MXW_RUN/p1/local.rules"
sed -i '/NEW_PROXY_RULE/d' "$MXW_RUN/p1/local.rules"
reloads=$(grep -c 'reload: new configuration' "$LOG")
kill -HUP "$PROXY_PID"
for ((i = 0; i < 100; i++)); do
	[ "$(grep -c 'reload: new configuration' "$LOG")" -gt "$reloads" ] && break
	sleep 0.1
done
r=$("$PY" "$SEND" one "$PROXY_PORT" 127.0.0.1 198.51.100.5 mail.sender.test \
	carol@mx.sender.test bob@local.test "$f" proxy)
is "$r" "eom 550 5.7.1 Hup HUP_PROXY_RULE" "proxy reload: SIGHUP loads the new rule set"

stop_pid "$PROXY_PID" 20
is "$MXW_STOP_STATUS" 0 "proxy stops cleanly on SIGTERM"
if grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' "$LOG" >/dev/null; then
	not_ok "no sanitizer report" "$(grep -A20 -E 'Sanitizer|runtime error' "$LOG" | head -40)"
else
	ok "no sanitizer report"
fi
done_testing
