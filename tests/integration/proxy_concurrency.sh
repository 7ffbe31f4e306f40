#!/usr/bin/env bash
# proxy_concurrency.sh - the proxy's event-driven model: many idle
# client connections cost no thread each and little memory, and do not
# hold up a real transaction.
#
# IDLE_N connections (default 1500, fewer when the open-files limit is
# low) connect from 127.0.0.20 in a burst and wait after the banner, each
# with its own backend session at smtp-sink. Meanwhile: every one got its
# 220; the proxy's threads stay within its worker pool's bound (one per
# connection would be IDLE_N); its memory per idle connection is bounded;
# a swaks transaction from another address goes through and is
# delivered; then every idle client's QUIT is answered and every session
# ends. Then 8 sessions whose HELO lookups time out hold the workers:
# the pool grows, and another client is answered within a second.
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=proxy_concurrency

mxw_require "(the proxy drops to user nobody)" smtp-sink swaks /usr/bin/python3

# Client, proxy (client + backend socket) and smtp-sink each need about
# one descriptor per connection for the proxy's two.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
lim=$(ulimit -n)
IDLE_N=${IDLE_N:-1500}
[ "$lim" != unlimited ] && [ $(((lim - 200) / 2)) -lt "$IDLE_N" ] &&
	IDLE_N=$(((lim - 200) / 2))
[ "$IDLE_N" -ge 200 ] || skip_all "open-files limit $lim too low for a useful test"
MAX_THREADS=140		# PROXY_MAX_WORKERS (128) + main, reload, resolver

mxw_rundir
. "$MXW_TOP/tests/integration/proxy/common.sh"

if ! start_dns "$MXW_RUN"; then
	not_ok "test DNS starts"; done_testing
fi
if ! SINK_MAX_CONN=$((IDLE_N + 50)) start_sink "$MXW_RUN"; then
	not_ok "smtp-sink starts"; done_testing
fi
if ! start_proxy p1 "127.0.0.1:$SINK_PORT" "proxy_backend_forward = none" \
	"proxy_max_connections = $((IDLE_N + 50))" "proxy_max_per_ip = $((IDLE_N + 10))"; then
	not_ok "proxy starts" "$(tail -20 "$MXW_RUN/p1/mxwarden.log")"; done_testing
fi
P1=$PROXY_PORT
LOG=$MXW_RUN/p1/mxwarden.log

# proc_field NAME - a field of the proxy's /proc status (kB for VmRSS)
proc_field() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$PROXY_PID/status"; }

# A first transaction warms up the resolver cache and the workers.
f=$(mail_file plain "From: <a@sender.test>" "To: <u@local.test>" "Subject: warm-up")
pmail 127.0.0.5 client.test a@sender.test u@local.test "$f" >/dev/null
rss0=$(proc_field VmRSS)

coproc IDLE { /usr/bin/python3 "$PROXY_HELPERS/idle_clients.py" "$P1" "$IDLE_N" 127.0.0.20 2>&1; }
IDLE_OUT=${IDLE[0]} IDLE_IN=${IDLE[1]}
mxw_track_pid "$IDLE_PID"
line=
read -r -t 150 -u "$IDLE_OUT" line
is "$line" "banners $IDLE_N 0" "$IDLE_N clients connect in a burst: every one gets the 220 banner"

threads=$(proc_field Threads)
rss1=$(proc_field VmRSS)
if [ -n "$threads" ] && [ "$threads" -le "$MAX_THREADS" ]; then
	ok "$IDLE_N idle connections, $threads proxy threads (at most $MAX_THREADS; not one each)"
else
	not_ok "$IDLE_N idle connections, at most $MAX_THREADS proxy threads" "got: $threads"
fi
per=$(((rss1 - rss0) / IDLE_N))
if [ "$per" -le 96 ]; then
	ok "memory per idle connection: $per KiB (RSS $rss0 -> $rss1 KiB; at most 96)"
else
	not_ok "memory per idle connection at most 96 KiB" "got $per KiB ($rss0 -> $rss1)"
fi

n0=$(count_sink)
f=$(mail_file plain "From: <a@sender.test>" "To: <u@local.test>" "Subject: among the idle")
r=$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$f")
like "$r" '^250 ' "a transaction while $IDLE_N connections wait: 250"
wait_delivered $((n0 + 1)) 30 && ok "... and it is delivered" || not_ok "... and it is delivered"

printf 'quit\n' >&"$IDLE_IN"
line=
read -r -t 120 -u "$IDLE_OUT" line
is "$line" "quit $IDLE_N" "every idle client's QUIT answered 221"
ended=0
for ((i = 0; i < 60; i++)); do
	ended=$(grep -c 'disconnect from \[127\.0\.0\.20\]' "$LOG")
	[ "$ended" -ge "$IDLE_N" ] && break
	sleep 1
done
is "$ended" "$IDLE_N" "every idle session ended (disconnect logged)"
like "$(pmail 127.0.0.5 client.test a@sender.test u@local.test "$f")" '^250 ' \
	"the proxy serves on afterwards"
errs=$(grep -cE 'PANIC|epoll_ctl|pthread_create|CONNECTION LIMIT|BACKEND FAILURE' "$LOG")
is "$errs" 0 "no errors, refusals or backend failures logged"

# DNS waits hold only the workers they run on: 8 sessions whose HELO
# lookups time out (dns_timeout 2 s) hold the 4 workers and more. The
# pool grows while its workers are all held up, so another client is
# answered meanwhile, long before those lookups end.
ms() { echo $(($(date +%s%N) / 1000000)); }
slow_pids=()
t0=$(ms)
for i in 1 2 3 4 5 6 7 8; do
	smtpc "$P1" --ip 127.0.0.23 send:"EHLO h$i.timeout.fault.test\r\n" reply \
		send:'QUIT\r\n' drain >"$MXW_RUN/slow.$i" 2>&1 &
	slow_pids+=($!)
	mxw_track_pid $!
done
sleep 0.5
t1=$(ms)
other=$(smtpc "$P1" --ip 127.0.0.24 send:'EHLO client.test\r\n' reply send:'QUIT\r\n' drain)
t2=$(ms)
wait "${slow_pids[@]}"
t3=$(ms)
like "$((t3 - t0))" '^([2-9][0-9]{3}|[0-9]{5,})$' \
	"8 sessions with timing-out HELO lookups are held 2 s or more ($((t3 - t0)) ms)"
like "$other" '250[ -]' "meanwhile another client's EHLO is answered"
like "$((t2 - t1))" '^[0-9]{1,3}$' \
	"... within a second ($((t2 - t1)) ms), before those lookups end"

# Stop with 100 idle sessions open: they are woken and ended, the
# workers stop, nothing leaks (exit 0, also under LeakSanitizer).
coproc IDLE2 { /usr/bin/python3 "$PROXY_HELPERS/idle_clients.py" "$P1" 100 127.0.0.21 2>&1; }
mxw_track_pid "$IDLE2_PID"
line=
read -r -t 60 -u "${IDLE2[0]}" line
is "$line" "banners 100 0" "100 more idle clients get the banner"
stop_pid "$PROXY_PID" 30
is "$MXW_STOP_STATUS" 0 "SIGTERM with 100 idle sessions: clean exit"
is "$(grep -c 'disconnect from \[127\.0\.0\.21\]' "$LOG")" 100 \
	"... every one of them ended first"
done_testing
