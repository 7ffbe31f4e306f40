#!/usr/bin/env bash
# state_failure.sh - the state database fails under a running daemon:
# read-only, then locked by another process; the configured on_db_error
# outcome (tempfail: 451 4.3.0; accept: the message goes on with an
# X-Mxwarden-Note header), a log line, and recovery once the database is
# usable again.
#
# Two proxies (mxwarden proxy, backend smtp-sink), one per on_db_error
# value, each with its database in its own directory and a rate limit
# that writes to it for every message. Each proxy runs in its own mount
# namespace (unshare --mount) in which that directory is a read-only
# bind mount from the start; the test makes it writable again from
# outside with nsenter (mount -o remount,rw,bind) and waits for the
# daemon to reopen it. Then a sqlite3 process holds BEGIN EXCLUSIVE on
# each database (bounded by timeout) beyond the busy timeout (2 s).
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=state_failure
MXW=$MXW_BIN/mxwarden

mxw_require "(mount namespaces, bind mounts)" smtp-sink swaks sqlite3 unshare nsenter runuser
unshare --mount --propagation private true 2>/dev/null ||
	skip_all "no mount namespaces here (unshare --mount fails)"
mxw_rundir
. "$MXW_TOP/tests/integration/proxy/common.sh"

start_dns "$MXW_RUN" || { not_ok "test DNS starts"; done_testing; }
start_sink "$MXW_RUN" || { not_ok "smtp-sink starts"; done_testing; }

# start_ro_proxy NAME ON_DB_ERROR - a proxy whose database directory
# ($MXW_RUN/NAME/db) is read-only in its mount namespace; sets PID_NAME,
# PORT_NAME, DBDIR_NAME.
start_ro_proxy() {
	local name=$1 run=$MXW_RUN/$1 port i
	mkdir -p "$run/db"
	chmod 755 "$run"
	chown nobody "$run/db"
	printf '%s\n' "list local_domains local.test" \
		"ratelimit per_sender sender 100000/1h" >"$run/local.rules"
	port=$(free_port) || return 1
	cp "$MXW_RUN/unbound.conf" "$run/"
	mxw_write_conf "$run" "$(free_port)" "proxy_listen = 127.0.0.1:$port" \
		"proxy_backend = 127.0.0.1:$SINK_PORT" "proxy_backend_forward = none" \
		"user = nobody" "on_db_error = $2"
	sed -i -e "s|^db_path = .*|db_path = $run/db/mxwarden.db|" \
		-e "s|^dns_unbound_conf = .*|dns_unbound_conf = $MXW_RUN/unbound.conf|" \
		"$run/mxwarden.conf"
	# The database exists (created by its future user) before the
	# directory turns read-only.
	runuser -u nobody -- "$MXW" db -c "$run/mxwarden.conf" stats \
		>"$run/db-create.log" 2>&1 || return 1
	unshare --mount --propagation private sh -c \
		'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" &&
		shift && exec "$@"' ro "$run/db" \
		"$MXW" proxy -f -c "$run/mxwarden.conf" >>"$run/mxwarden.log" 2>&1 &
	printf -v "PID_$name" '%s' "$!"
	printf -v "PORT_$name" '%s' "$port"
	printf -v "DBDIR_$name" '%s' "$run/db"
	mxw_track_pid "$!"
	for ((i = 0; i < 200; i++)); do
		kill -0 "$!" 2>/dev/null || return 1
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

n=0
# msg NAME - one message through proxy NAME; prints the final reply
msg() {
	local port=PORT_$1 f
	n=$((n + 1))
	f=$(mail_file "m$n" "From: <a$n@sender.test>" "To: <u@local.test>" \
		"Subject: dbfail $n")
	PMAIL_PORT=${!port} pmail 127.0.0.20 client.sender.test "a$n@sender.test" \
		u@local.test "$f"
}

# retry_until NAME REGEX SECONDS - send messages until the reply
# matches (the daemon reopens the database every 5 s); prints the last.
retry_until() {
	local end=$((SECONDS + $3)) out
	while :; do
		out=$(msg "$1")
		[[ $out =~ $2 ]] && break
		[ "$SECONDS" -ge "$end" ] && break
		sleep 1
	done
	printf '%s\n' "$out"
}

# last_delivered - the newest message in the sink
last_delivered() { delivered_file "$(count_sink)"; }

for p in t:tempfail a:accept; do
	start_ro_proxy "${p%%:*}" "${p#*:}" ||
		{ not_ok "proxy (on_db_error=${p#*:}) starts on a read-only database" \
			"$(tail -5 "$MXW_RUN/${p%%:*}/mxwarden.log")"; done_testing; }
done
ok "two proxies start on read-only databases"
touch "$DBDIR_t/probe" 2>/dev/null && rm -f "$DBDIR_t/probe" ||
	diag "(outside the namespace the directory is writable, as it should be)"
nsenter -t "$PID_t" -m sh -c "touch '$DBDIR_t/probe'" 2>/dev/null &&
	not_ok "the database directory is read-only for the daemon" ||
	ok "the database directory is read-only for the daemon"

# ---- read-only ----
out=$(msg t)
like "$out" '^451 4\.3\.0 ' "read-only, tempfail: 451 4.3.0"
n0=$(count_sink)
out=$(msg a)
like "$out" '^250 ' "read-only, accept: the message goes on"
if wait_delivered $((n0 + 1)) 20; then
	like "$(header_of "$(last_delivered)" X-Mxwarden-Note)" 'state database unavailable' \
		"read-only, accept: X-Mxwarden-Note header added"
	like "$(header_of "$(last_delivered)" X-Spam-Status)" 'STATE_DB_ERROR' \
		"read-only, accept: STATE_DB_ERROR in the spam header"
else
	not_ok "read-only, accept: message delivered"
fi
for p in t a; do
	grep -Eq 'database .*(read-only|readonly|cannot reopen|unable to open)' \
		"$MXW_RUN/$p/mxwarden.log" && ok "read-only: logged ($p)" ||
		not_ok "read-only: logged ($p)" "$(grep -i database "$MXW_RUN/$p/mxwarden.log" | tail -3)"
done
kill -0 "$PID_t" 2>/dev/null && kill -0 "$PID_a" 2>/dev/null &&
	ok "read-only: both daemons still running" ||
	not_ok "read-only: both daemons still running"

# ---- writable again: recovery ----
for p in t a; do
	pid=PID_$p dir=DBDIR_$p
	nsenter -t "${!pid}" -m mount -o remount,rw,bind "${!dir}" ||
		not_ok "remount rw in the namespace of $p"
done
out=$(retry_until t '^250 ' 15)
like "$out" '^250 ' "read-only over, tempfail: accepted again"
grep -q 'reopened' "$MXW_RUN/t/mxwarden.log" && ok "recovery logged (reopened)" ||
	not_ok "recovery logged (reopened)"
out=$(retry_until a '^250 ' 15)
n0=$(count_sink)
# a second one: the first may have been sent before the reopen
out=$(retry_until a '^250 ' 15)
if wait_delivered $((n0 + 1)) 20 &&
	[ "$(header_count "$(last_delivered)" X-Mxwarden-Note)" = 0 ]; then
	ok "read-only over, accept: no note on new messages"
else
	sleep 6
	n0=$(count_sink)
	msg a >/dev/null
	wait_delivered $((n0 + 1)) 20
	is "$(header_count "$(last_delivered)" X-Mxwarden-Note)" 0 \
		"read-only over, accept: no note on new messages"
fi
cnt=$(sqlite3 "$DBDIR_t/mxwarden.db" "SELECT count(*) FROM counters WHERE kind LIKE 'rate:%'")
[ "${cnt:-0}" -gt 0 ] && ok "recovery: the daemon writes its counters again" ||
	not_ok "recovery: the daemon writes its counters again" "counters: $cnt"

# ---- locked: sqlite3 holds BEGIN EXCLUSIVE beyond the busy timeout ----
# hold_lock DB SECONDS - a sqlite3 process with an exclusive transaction
# open for SECONDS (timeout bounds it); waits until the lock is held.
hold_lock() {
	local db=$1 i
	{ echo ".timeout 5000"; echo "BEGIN EXCLUSIVE;"; echo "SELECT 'locked';"
		sleep "$2"; echo "COMMIT;"; } |
		timeout $(($2 + 10)) sqlite3 "$db" >>"$MXW_RUN/lock.log" 2>&1 &
	LOCK_PID=$!
	mxw_track_pid "$LOCK_PID"
	for ((i = 0; i < 50; i++)); do
		sqlite3 -cmd ".timeout 0" "$db" "BEGIN IMMEDIATE; ROLLBACK;" \
			>/dev/null 2>&1 || return 0
		sleep 0.1
	done
	return 1
}
for p in t a; do
	dir=DBDIR_$p
	if ! hold_lock "${!dir}/mxwarden.db" 12; then
		not_ok "locked ($p): sqlite3 holds the lock" "$(tail -3 "$MXW_RUN/lock.log")"
		continue
	fi
	n0=$(count_sink)
	out=$(msg "$p")
	if [ "$p" = t ]; then
		like "$out" '^451 4\.3\.0 ' "locked, tempfail: 451 4.3.0"
	else
		like "$out" '^250 ' "locked, accept: the message goes on"
		wait_delivered $((n0 + 1)) 20
		like "$(header_of "$(last_delivered)" X-Mxwarden-Note)" \
			'state database unavailable' "locked, accept: X-Mxwarden-Note header"
	fi
	grep -q 'locked (busy timeout passed)' "$MXW_RUN/$p/mxwarden.log" &&
		ok "locked: logged ($p)" || not_ok "locked: logged ($p)"
	stop_pid "$LOCK_PID" >/dev/null
	out=$(retry_until "$p" '^250 ' 15)
	like "$out" '^250 ' "lock released ($p): accepted again"
done
for p in t a; do
	pid=PID_$p
	stop_pid "${!pid}"
	is "$MXW_STOP_STATUS" 0 "proxy $p stops cleanly (never crashed)"
done
done_testing
