#!/usr/bin/env bash
# state_milter.sh - relay control, harvesting, rate limits, greylisting
# and `mxwarden db` through the milter with a real Postfix; two
# mxwarden daemons on one database under concurrent load (exact
# counts); a database that cannot be opened at start-up (on_db_error,
# then recovery) and a read-only one.
#
# Postfix settings this relies on (and that a site using mxwarden's
# relay and harvesting control needs):
#   smtpd_reject_unlisted_recipient = no   unknown recipients reach the
#                                          milter, which counts them
#   smtpd_relay_restrictions = check_client_access static:OK,
#       reject_unauth_destination          here only, so that every
#                                          tricky recipient form reaches
#                                          the milter (a real site lets
#                                          reject_unauth_destination act)
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=state_milter
MXW=$MXW_BIN/mxwarden

mxw_require "to run a private Postfix" postfix smtp-sink smtp-source swaks sqlite3
mxw_rundir
start_dns "$MXW_RUN" || { not_ok "test DNS starts"; done_testing; }

cat >"$MXW_RUN/local.rules" <<'RULES'
list local_domains local.test
list valid_recipients known@local.test known2@local.test postmaster@local.test
harvest threshold 3
harvest window 60s
harvest block 4s
harvest tarpit_ms 0
ratelimit per_sender sender 3/6s
RULES
PF_EXTRA_MAIN="smtpd_relay_restrictions = check_client_access static:OK, reject_unauth_destination"
if ! start_sink "$MXW_RUN" || ! start_mxwarden "$MXW_RUN" ||
	! start_postfix "$MXW_RUN" "$MXW_MILTER"; then
	not_ok "Postfix, sink and mxwarden start"
	done_testing
fi
conf=$MXW_RUN/mxwarden.conf
M1_PID=$MXW_PID
M1_PORT=$MXW_MILTER_PORT
n=0
# msg IP MAILFROM RCPT - send one message, print the final reply
msg() {
	n=$((n + 1))
	local f
	f=$(mail_file "m$n" "From: <$2>" "To: <$3>" "Subject: state $n")
	send_mail "$1" client.sender.test "$2" "$3" "$f"
}
# reload - SIGUSR1 to the daemon, wait for the log line (bounded).
reload() {
	local before i
	before=$(grep -c 'reload: new configuration' "$MXW_RUN/mxwarden.log")
	kill -USR1 "$M1_PID"
	for ((i = 0; i < 50; i++)); do
		[ "$(grep -c 'reload: new configuration' "$MXW_RUN/mxwarden.log")" -gt \
			"$before" ] && return 0
		sleep 0.1
	done
	return 1
}

# ---- relay: each tricky form gets 554 5.7.1 from the milter ----
i=0
for r in 'user%other.example@local.test' '"user@other.example"@local.test' \
	'user@other.example@local.test' '@local.test:user@other.example' \
	'other.example!user@local.test' 'user@[192.0.2.1]' 'user@other.example.' \
	'user@OTHER.example' '"user%other"@local.test' 'someone@elsewhere.test'; do
	# (user@[127.0.0.1] is Postfix's own address: Postfix routes it to
	# its local transport, an error transport in this test set-up, and
	# tells the milter {rcpt_mailer} = error; see the unit tests.)
	i=$((i + 1))
	out=$(msg 127.0.0.10 "r$i@sender.test" "$r")
	like "$out" '^554 5\.7\.1 .*Relay access denied' "relay: <$r> refused"
done
for r in 'known@local.test' 'KNOWN@Local.Test' 'known@local.test.' \
	'"known"@local.test'; do
	i=$((i + 1))
	out=$(msg 127.0.0.11 "r$i@sender.test" "$r")
	like "$out" '^250 ' "relay: <$r> accepted"
done
grep -q 'reject 554 5.7.1 Relay access denied' "$MXW_RUN/mxwarden.log" &&
	ok "relay: the milter logged RELAY_DENIED" ||
	not_ok "relay: the milter logged RELAY_DENIED"

# ---- harvest: 127.0.0.40 blocked at the 3rd unknown, .41 not ----
res=""
for u in x1 x2 x3; do
	out=$(msg 127.0.0.40 "h$u@sender.test" "$u@local.test")
	res="$res ${out:0:3}"
done
is "$res" " 550 550 421" "harvest: 550, 550, then 421 at the threshold"
out=$(msg 127.0.0.40 h4@sender.test known@local.test)
# (Postfix answers a milter's refusal at connect with its own 421 text.)
like "$out" '^421 ' "harvest: the blocked client is refused a valid recipient"
out=$(msg 127.0.0.41 h5@sender.test known@local.test)
like "$out" '^250 ' "harvest: a second client IP is unaffected"
out=$("$MXW" db -c "$conf" list blocks)
like "$out" '127\.0\.0\.40 +harvest' "harvest: db list blocks shows it"
run_ok "db unblock 127.0.0.40" "$MXW" db -c "$conf" unblock 127.0.0.40
out=$(msg 127.0.0.40 h6@sender.test known@local.test)
like "$out" '^250 ' "db unblock: the running daemon serves the client at once"
for u in y1 y2 y3; do msg 127.0.0.40 "h$u@sender.test" "$u@local.test" >/dev/null; done
out=$(msg 127.0.0.40 h7@sender.test known@local.test)
like "$out" '^4' "harvest: blocked again"
sleep 4.5
out=$(msg 127.0.0.40 h8@sender.test known@local.test)
like "$out" '^250 ' "harvest: the block expires"

# ---- db block / unblock on the running daemon ----
run_ok "db block 127.0.0.42" "$MXW" db -c "$conf" block 127.0.0.42 --for 1h
out=$(msg 127.0.0.42 b1@sender.test known@local.test)
like "$out" '^4' "db block: refused at once"
run_ok "db unblock 127.0.0.42" "$MXW" db -c "$conf" unblock 127.0.0.42
out=$(msg 127.0.0.42 b2@sender.test known@local.test)
like "$out" '^250 ' "db unblock: accepted at once"

# ---- rate limit per sender: 3 pass, the 4th 451, recovery ----
res=""
for k in 1 2 3 4; do
	out=$(msg "127.0.0.5$k" rl@sender.test known@local.test)
	res="$res ${out:0:9}"
done
is "$res" " 250 2.0.0 250 2.0.0 250 2.0.0 451 4.7.1" \
	"rate limit: exactly 3 messages of one sender pass"
sleep 6.5
out=$(msg 127.0.0.55 rl@sender.test known@local.test)
like "$out" '^250 ' "rate limit: recovers after the window"

# ---- greylisting: defer, early retry deferred, accepted after the delay ----
printf '%s\n' "greylist enable on" "greylist delay 3s" "greylist awl_passes 0" \
	>>"$MXW_RUN/local.rules"
if reload; then ok "reload with greylisting"; else not_ok "reload with greylisting"; fi
out=$(msg 127.0.0.60 g@sender.test known@local.test)
like "$out" '^451 4\.7\.1 .*Greylisted' "greylist: first attempt deferred"
out=$(msg 127.0.0.60 g@sender.test known@local.test)
like "$out" '^451 4\.7\.1 .*Greylisted' "greylist: an early retry is deferred"
sleep 3.5
out=$(msg 127.0.0.60 g@sender.test known@local.test)
like "$out" '^250 ' "greylist: the retry after the delay is accepted"
run_ok "db whitelist 127.0.0.61" "$MXW" db -c "$conf" whitelist 127.0.0.61
out=$(msg 127.0.0.61 g@sender.test known@local.test)
like "$out" '^250 ' "greylist: db whitelist takes effect at once"
sed -i '/^greylist/d' "$MXW_RUN/local.rules"
reload || not_ok "reload without greylisting"

# ---- two daemons on one database under concurrent load ----
two_daemons() {
	local run=$MXW_RUN/two port2 pid2 before after want=40
	mkdir -p "$run" && chmod 755 "$run"
	sed -i 's/^ratelimit per_sender .*/ratelimit per_sender sender 100000\/1h/' \
		"$MXW_RUN/local.rules"
	echo "ratelimit cc sender_domain 100000/1h" >>"$MXW_RUN/local.rules"
	reload || { not_ok "two daemons: reload"; return; }
	port2=$(free_port)
	sed "s/^milter_socket.*/milter_socket = inet:$port2@127.0.0.1/" "$conf" \
		>"$run/mxwarden.conf"
	"$MXW" -f -c "$run/mxwarden.conf" >>"$run/mxwarden.log" 2>&1 &
	pid2=$!
	mxw_track_pid "$pid2"
	_mxw_wait_milter "$pid2" "$port2" "$run/mxwarden.log" mxwarden2 ||
		{ not_ok "two daemons: the second starts"; return; }
	start_postfix "$run" "inet:127.0.0.1:$M1_PORT, inet:127.0.0.1:$port2" ||
		{ not_ok "two daemons: second Postfix starts"; return; }
	before=$(sqlite3 "$MXW_RUN/mxwarden.db" \
		"SELECT count FROM counters WHERE kind='rate:cc' AND key='mx.sender.test'")
	before=${before:-0}
	# 40 messages over 8 connections at once; each passes both milters.
	timeout 120 /usr/sbin/smtp-source -c -s 8 -m $want -l 200 \
		-f cc@mx.sender.test -t known@local.test "127.0.0.1:$SMTP_PORT" \
		>"$run/smtp-source.log" 2>&1 ||
		diag "smtp-source: $(tail -3 "$run/smtp-source.log")"
	out=$("$MXW" db -c "$conf" list rates --json)
	after=$(sed -n 's/.*"kind":"rate:cc","key":"mx.sender.test","count":\([0-9]*\).*/\1/p' <<<"$out")
	is "$((${after:-0} - before))" "$((2 * want))" \
		"two daemons: $want messages through both, $((2 * want)) increments, none lost"
	stop_postfix "$PF_QUEUE"
}
two_daemons

done_testing
