#!/usr/bin/env bash
# rules_milter.sh - the rules corpus (tests/rules/corpus, the same
# NAME.expect files as rules.sh) through the milter front end: a private
# Postfix with mxwarden as its milter, relaying to smtp-sink. Postfix
# trusts XCLIENT from loopback, so each message arrives from the
# corpus's client address (198.51.100.x, 2001:db8:...), as in
# `mxwarden check --ip`.
#
# For each message: the reply and the stage that refused it (connect,
# helo, rcpt, eom ...), the reply text; for a delivered one the symbols
# in its X-Spam-Status header and X-Spam-Flag; for a refused one the
# symbols in mxwarden's summary log line (which also gives the scores).
#
# Then a reload (`mxwarden reload`) during a load of 200 messages from
# 4 parallel senders: every message accepted (250) and delivered once,
# none tempfailed, and the new rule is in force for every transaction
# that starts after the reload was logged.
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=rules_milter

mxw_require "to run a private Postfix" postfix smtp-sink /usr/bin/python3
PY=/usr/bin/python3
mxw_rundir

CORPUS=$MXW_TOP/tests/rules/corpus
SEND=$MXW_TOP/tests/rules/smtp_send.py
. "$MXW_TOP/tests/rules/corpus_lib.sh"

if ! start_dns "$MXW_RUN"; then
	not_ok "test DNS starts"; done_testing
fi
cp "$MXW_TOP/tests/rules/test.rules" "$MXW_RUN/local.rules"
if ! start_mxwarden "$MXW_RUN" "pid_file = $MXW_RUN/mxwarden.pid"; then
	not_ok "mxwarden milter starts" "$(tail -20 "$MXW_RUN/mxwarden.log")"
	done_testing
fi
# XCLIENT from the test clients; long lines (catastrophic.eml) whole.
PF_EXTRA_MAIN="smtpd_authorized_xclient_hosts = 127.0.0.0/8
line_length_limit = 65536
inet_protocols = all"
if ! start_sink "$MXW_RUN" || ! start_postfix "$MXW_RUN" "$MXW_MILTER"; then
	not_ok "Postfix and smtp-sink start" "$(tail -20 "$MXW_RUN/postfix.log")"
	done_testing
fi
ok "mxwarden milter, Postfix and smtp-sink start"
LOG=$MXW_RUN/mxwarden.log

# ---- the corpus ----
corpus_all xclient "$SMTP_PORT" "$LOG"

# ---- reload during a load ----
# load.eml: a clean message; NEW_RULE matches its body once loaded.
printf 'From: Carol <carol@mx.sender.test>\nTo: bob@local.test\n\nloadmarker text\n' \
	>"$MXW_RUN/load.eml"
n0=$(delivered_count)
echo 'rule NEW_RULE body /loadmarker/ score 0.1' >"$MXW_RUN/new.rules"
# The reload command: the new rule set is written then, not before.
reload_cmd="cat '$MXW_RUN/new.rules' >>'$MXW_RUN/local.rules' &&
	'$MXW_BIN/mxwarden' reload -c '$MXW_RUN/mxwarden.conf'"
timeout 300 "$PY" "$SEND" load "$SMTP_PORT" 4 200 "$MXW_RUN/load.out" \
	"$reload_cmd" "$LOG" "$MXW_RUN/load.eml" 2>"$MXW_RUN/load.err"
if [ ! -s "$MXW_RUN/load.out" ]; then
	not_ok "load: sender ran" "$(tail -5 "$MXW_RUN/load.err")"
	done_testing
fi
n250=$(grep -c '^[0-9]* eom 250 ' "$MXW_RUN/load.out")
is "$n250" 200 "load: 200 messages from 4 senders, every one accepted (250)"
is "$(grep -Ec '^[0-9]+ [a-z]+ 4[0-9][0-9] ' "$MXW_RUN/load.out")" 0 \
	"load: none tempfailed"
like "$(grep '^reload ' "$MXW_RUN/load.out")" '^reload [0-9]' \
	"load: the reload was logged during the load"
wait_delivered $((n0 + 200)) 60
is "$(delivered_count)" $((n0 + 200)) "load: 200 messages delivered"
# Per message: subject "load N" -> has NEW_RULE? Compare with its times.
for f in $(find "$SINK_DIR" -type f); do
	s=$(header_of "$f" Subject)
	[[ $s == load\ * ]] || continue
	x=$(header_of "$f" X-Spam-Status | tr -d ' \t')
	case $x in *NEW_RULE*) echo "${s#load } new" ;; *) echo "${s#load } old" ;; esac
done >"$MXW_RUN/load.seen"
res=$("$PY" - "$MXW_RUN/load.out" "$MXW_RUN/load.seen" <<'PYEOF'
import sys
times, reload_at = {}, None
for line in open(sys.argv[1]):
    w = line.split()
    if w[0] == 'reload':
        reload_at = float(w[1]) if w[1] != 'none' else None
    else:
        times[w[0]] = (float(w[3]), float(w[4]))
seen = dict(l.split() for l in open(sys.argv[2]))
errs, before, after = [], 0, 0
for n, (t0, t1) in times.items():
    if reload_at is None:
        break
    if t0 > reload_at:
        after += 1
        if seen.get(n) != 'new':
            errs.append('message %s started after the reload without NEW_RULE' % n)
    elif t1 < reload_at - 5:
        before += 1
print('%d after, %d before' % (after, before))
for e in errs[:5]:
    print(e)
sys.exit(1 if errs or after == 0 else 0)
PYEOF
)
if [ $? = 0 ]; then ok "load: the new rule is in force after the reload ($res)"
else not_ok "load: the new rule is in force after the reload" "$res"; fi
if [ "$(sort "$MXW_RUN/load.seen" | cut -d' ' -f1 | sort -u | wc -l)" = 200 ]; then
	ok "load: each message delivered once"
else
	not_ok "load: each message delivered once"
fi
old=$(grep -c ' old$' "$MXW_RUN/load.seen")
if [ "$old" -gt 0 ]; then ok "load: $old messages before the reload had the old rule set"
else not_ok "load: messages before the reload had the old rule set" "none had"; fi
is "$(grep -c 'reload refused' "$LOG")" 0 "load: no reload refused"

stop_postfix "$PF_QUEUE"
stop_pid "$MXW_PID" 20
is "$MXW_STOP_STATUS" 0 "mxwarden stops cleanly on SIGTERM"
if grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' "$LOG" >/dev/null; then
	not_ok "no sanitizer report" "$(grep -A20 -E 'Sanitizer|runtime error' "$LOG" | head -40)"
else
	ok "no sanitizer report"
fi
done_testing
