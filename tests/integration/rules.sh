#!/usr/bin/env bash
# rules.sh - the rules corpus: every tests/rules/corpus/NAME.eml is run
# through `mxwarden check --json` under tests/rules/test.rules (as the
# local rules file after the shipped defaults), against the test DNS
# server (DNSBL zones in tests/dns/zones/dnsbl.test.zone). NAME.expect:
#   args ARGS...        the check options (--ip, --helo, --from, --rcpt)
#   has SYM...          symbols that must be present
#   not SYM...          symbols that must be absent
#   skipped SYM...      absent here: the check stops at the decision
#                       (the milter and proxy suites ignore it: those
#                       front ends run the checks on to the end of the
#                       message for the header edits)
#   score SYM N         the symbol's score
#   action ACT          the final action;  stage STAGE  where it was decided
#   spam yes|no         whether X-Spam-Flag is added (add_header)
#   reply CODE X.Y.Z TEXT   the reply
# Then configtest on bad rule files (file:line), lint warnings, and
# reload through a running daemon (good rule set taken, bad one refused).
. "$(dirname "$0")/lib.sh"
mxw_rundir
cd "$MXW_TOP" || exit 1
MXW=$MXW_BIN/mxwarden
CORPUS=$MXW_TOP/tests/rules/corpus
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no /usr/bin/python3 to read JSON"
[ -x "$MXW" ] || skip_all "$MXW not built"

start_dns "$MXW_RUN" || skip_all "test DNS server did not start"
cp tests/rules/test.rules "$MXW_RUN/local.rules"
mxw_write_conf "$MXW_RUN" 1 "pid_file = $MXW_RUN/mxwarden.pid"
conf=$MXW_RUN/mxwarden.conf

# check_case NAME - run one corpus message and compare.
check_case() {
	local name=$1 exp=$CORPUS/$1.expect args out
	args=$(sed -n 's/^args //p' "$exp")
	# shellcheck disable=SC2086
	out=$("$MXW" check -c "$conf" $args --json <"$CORPUS/$name.eml" 2>"$MXW_RUN/$name.err")
	printf '%s\n' "$out" >"$MXW_RUN/$name.json"
	"$PY" - "$MXW_RUN/$name.json" "$exp" <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))
syms = {s["name"]: s for s in j["symbols"]}
errs = []
for line in open(sys.argv[2]):
    w = line.split()
    if not w:
        continue
    k, rest = w[0], w[1:]
    if k == "has":
        errs += ["missing " + s for s in rest if s not in syms]
    elif k in ("not", "skipped"):
        errs += ["unexpected %s (%s)" % (s, syms[s].get("detail")) for s in rest if s in syms]
    elif k == "score":
        got = syms.get(rest[0], {}).get("score")
        if got is None or abs(got - float(rest[1])) > 1e-6:
            errs.append("score %s: %s, want %s" % (rest[0], got, rest[1]))
    elif k == "spam":
        flagged = any(h["name"] == "X-Spam-Flag" for h in j["headers"])
        if flagged != (rest[0] == "yes"):
            errs.append("X-Spam-Flag %s, want %s" % (flagged, rest[0]))
    elif k == "action" and j["action"] != rest[0]:
        errs.append("action %s, want %s" % (j["action"], rest[0]))
    elif k == "stage" and j["stage"] != rest[0]:
        errs.append("stage %s, want %s" % (j["stage"], rest[0]))
    elif k == "reply":
        r = j.get("reply") or {}
        got = " ".join([r.get("code", ""), r.get("xcode", ""), r.get("text", "")])
        if got != " ".join(rest):
            errs.append("reply %r, want %r" % (got, " ".join(rest)))
for e in errs:
    print(e)
sys.exit(1 if errs else 0)
PYEOF
}

for exp in "$CORPUS"/*.expect; do
	name=$(basename "$exp" .expect)
	if res=$(check_case "$name" 2>&1); then
		ok "corpus $name"
	else
		not_ok "corpus $name" "$res" "$(head -c 2000 "$MXW_RUN/$name.json")"
	fi
done

# A matched rule is shown with what it matched on (text trace too).
out=$("$MXW" check -c "$conf" --ip 198.51.100.5 --helo mail.sender.test \
	--from alice@mx.sender.test --rcpt bob@local.test <"$CORPUS/plain.eml" 2>&1)
like "$out" 'BODY_WALLET +4\.00 +body "send bitcoin to"' "text trace shows the match"

# A DNSBL that never answers: logged, not a listing, bounded by the
# DNS timeout.
echo 'dnsbl TO timeout.fault.test 127.0.0.2=5' >"$MXW_RUN/to.rules"
cat tests/rules/test.rules >>"$MXW_RUN/to.rules"
start=$(date +%s)
out=$("$MXW" check -c "$conf" -o "local_rules_file=$MXW_RUN/to.rules" \
	-o dns_timeout=500ms --ip 198.51.100.5 --helo mail.sender.test \
	--from carol@mx.sender.test --rcpt bob@local.test --json \
	<"$CORPUS/clean.eml" 2>"$MXW_RUN/to.err")
end=$(date +%s)
unlike "$out" '"DNSBL_TO"' "a DNSBL timeout is not a listing"
like "$(cat "$MXW_RUN/to.err")" 'DNSBL_TO .*timeout: not counted' "a DNSBL timeout is logged"
like "$out" '"action":"accept"' "and the message is accepted"
if [ $((end - start)) -le 10 ]; then ok "a DNSBL timeout is bounded"
else not_ok "a DNSBL timeout is bounded" "took $((end - start)) s"; fi

# Bad rule files: every kind of error with its file:line.
cat >"$MXW_RUN/bad.rules" <<'RULES'
rule R1 subject /(unclosed/ score 1
rule R2 nowhere /x/ score 1
rule R3 body /x/q score 1
rule R4 body /x/
meta M1 A && score 1
rule R1 body /y/ score 1
dnsbl Z zen.example 127.0.0.2
RULES
out=$("$MXW" configtest -c "$conf" -o "local_rules_file=$MXW_RUN/bad.rules" 2>&1); rc=$?
is "$rc" 1 "configtest refuses bad rules"
like "$out" "bad.rules:1: pattern /\(unclosed/ does not compile" "pattern error with file:line"
like "$out" "bad.rules:2: unknown target \"nowhere\"" "unknown target with file:line"
like "$out" "bad.rules:3: unknown pattern flag 'q'" "bad flag with file:line"
like "$out" "bad.rules:4: R4 needs a score or an action" "missing outcome with file:line"
like "$out" "bad.rules:5: meta M1: expression ends early" "bad meta with file:line"
like "$out" "bad.rules:7: expected CODE=WEIGHT" "bad dnsbl with file:line"

# Lint: warnings, exit 0.
cat >"$MXW_RUN/lint.rules" <<'RULES'
rule EMPTY body /x*/ score 1
meta M1 NO_SUCH_SYMBOL && SPF_FAIL score 1
rule DUPNAME body /a/ score 1
RULES
out=$("$MXW" configtest -c "$conf" -o "local_rules_file=$MXW_RUN/lint.rules" 2>&1); rc=$?
is "$rc" 0 "configtest accepts rules with warnings"
like "$out" "lint.rules:1: warning: rule EMPTY: pattern /x\*/ matches the empty string" "lint: empty match"
like "$out" "lint.rules:2: warning: meta M1 uses unknown symbol NO_SUCH_SYMBOL" "lint: unknown meta symbol"

# Lint: rules unreachable after a whitelist (warnings, exit 0).
cat >"$MXW_RUN/wl.rules" <<'RULES'
list whitelist_clients 10.0.0.0/8 2001:db8::/32
list blacklist_clients 10.1.2.3 192.0.2.1 2001:db8:1::/48
list partners .partner.example
list partner_subs x@a.partner.example mail.partner.example
list lan 10.20.0.0/16
list wan 10.20.0.0/16 192.0.2.0/24
rule WL_PARTNER from in:partners action accept
rule FROM_SUB   from in:partner_subs score 2
rule LAN_HIT    client_ip in:lan score 1
rule WAN_HIT    client_ip in:wan score 1
rule WL_HELO    helo /^trusted\.example$/ action accept
rule HELO_SAME  helo /^trusted\.example$/ score 1
rule HELO_OTHER helo /^other\.example$/ score 1
rule WL_ALL     subject /x*/ action accept
rule BODY_AFTER body /viagra/ score 3
RULES
out=$("$MXW" configtest -c "$conf" -o "local_rules_file=$MXW_RUN/wl.rules" 2>&1); rc=$?
is "$rc" 0 "configtest accepts shadowed rules with warnings"
like "$out" "wl.rules:2: warning: blacklist_clients entry 10\.1\.2\.3 is unreachable: whitelist_clients entry 10\.0\.0\.0/8 \([^)]*wl.rules:1\) accepts those clients first" \
	"lint: blacklist_clients entry inside whitelist_clients"
like "$out" "blacklist_clients entry 2001:db8:1::/48 is unreachable" "lint: the same for IPv6"
unlike "$out" "entry 192\.0\.2\.1 is unreachable" "lint: an entry outside the whitelist is reachable"
like "$out" "wl.rules:8: warning: rule FROM_SUB is unreachable: every message it matches is accepted first by rule WL_PARTNER" \
	"lint: list rule inside an earlier accept rule's list"
like "$out" "wl.rules:9: warning: rule LAN_HIT is unreachable: every client in list lan is in whitelist_clients" \
	"lint: client_ip list rule inside whitelist_clients"
unlike "$out" "rule WAN_HIT is unreachable" "lint: a list partly outside the whitelist is reachable"
like "$out" "wl.rules:12: warning: rule HELO_SAME is unreachable: every message it matches is accepted first by rule WL_HELO" \
	"lint: same pattern after an accept rule"
unlike "$out" "rule HELO_OTHER is unreachable" "lint: another pattern after an accept rule is reachable"
like "$out" "wl.rules:14: warning: rule WL_ALL accepts every message that has a subject: 1 rule\(s\) evaluated after it never decide" \
	"lint: an accept rule that matches everything"

# Reload through the pid file: the daemon takes a good rule set and
# refuses a broken one (the old one stays).
port=$(free_port)
mxw_write_conf "$MXW_RUN" "$port" "pid_file = $MXW_RUN/mxwarden.pid"
"$MXW" -f -c "$conf" >>"$MXW_RUN/mxwarden.log" 2>&1 &
dpid=$!
mxw_track_pid "$dpid"
for ((i = 0; i < 100; i++)); do
	[ -s "$MXW_RUN/mxwarden.pid" ] && break
	sleep 0.1
done
if [ ! -s "$MXW_RUN/mxwarden.pid" ]; then
	skip "reload" "daemon did not start: $(tail -5 "$MXW_RUN/mxwarden.log")"
else
	echo 'rule NEW_RULE body /reloaded/ score 1' >>"$MXW_RUN/local.rules"
	out=$("$MXW" reload -c "$conf" 2>&1); rc=$?
	is "$rc" 0 "reload of a good rule set is sent"
	for ((i = 0; i < 50; i++)); do
		grep -q "reload: new configuration" "$MXW_RUN/mxwarden.log" && break
		sleep 0.1
	done
	like "$(cat "$MXW_RUN/mxwarden.log")" "reload: new configuration and rules in force" \
		"daemon installed the new rule set"
	echo 'rule BROKEN body /(/ score 1' >>"$MXW_RUN/local.rules"
	out=$("$MXW" reload -c "$conf" 2>&1); rc=$?
	is "$rc" 1 "reload refuses to signal with a broken rule set"
	like "$out" "local.rules:[0-9]+: pattern /\(/ does not compile" "and says where"
	# Signal it anyway: the daemon refuses and keeps running.
	kill -USR1 "$(cat "$MXW_RUN/mxwarden.pid")"
	for ((i = 0; i < 50; i++)); do
		grep -q "reload refused" "$MXW_RUN/mxwarden.log" && break
		sleep 0.1
	done
	like "$(cat "$MXW_RUN/mxwarden.log")" "reload refused: the running configuration" \
		"daemon refuses a broken rule set"
	sleep 0.2
	if kill -0 "$dpid" 2>/dev/null; then ok "daemon still running after SIGUSR1"
	else not_ok "daemon still running after SIGUSR1"; fi
fi
done_testing
