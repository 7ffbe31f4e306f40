#!/usr/bin/env bash
# state_check.sh - relay control, harvesting, rate limits, greylisting,
# `mxwarden db` and database failures, through `mxwarden check --state`
# (the engine with the state database, as the daemon runs it) over the
# test DNS. Windows are seconds long; every wait is bounded.
. "$(dirname "$0")/lib.sh"
mxw_rundir
MXW=$MXW_BIN/mxwarden
command -v sqlite3 >/dev/null || skip_all "sqlite3 command missing (package sqlite3)"
start_dns "$MXW_RUN" || { not_ok "test DNS starts"; done_testing; exit; }

cat >"$MXW_RUN/local.rules" <<'RULES'
list local_domains local.test
list valid_recipients known@local.test postmaster@local.test
harvest threshold 3
harvest window 30s
harvest block 4s
harvest tarpit_ms 0
ratelimit per_ip ip 1000/1h
RULES
mxw_write_conf "$MXW_RUN" 1
conf=$MXW_RUN/mxwarden.conf
printf 'From: <a@sender.test>\nSubject: hi\n\nbody\n' >"$MXW_RUN/m.eml"

# chk IP RCPT [FROM] - the JSON trace of one message
chk() {
	"$MXW" check -c "$conf" --state --ip "$1" --helo good10.iprev.test \
		--from "${3:-a@sender.test}" --rcpt "$2" --json <"$MXW_RUN/m.eml" 2>>"$MXW_RUN/check.err"
}
decided() { sed -n 's/.*"decided_by":"\{0,1\}\([A-Z_a-z]*\).*/\1/p' <<<"$1"; }
code() { sed -n 's/.*"reply":{"code":"\([0-9]*\)".*/\1/p' <<<"$1"; }

# ---- relay: each tricky form is refused with 554 at RCPT ----
ip=127.0.0.10
for r in 'user%other.example@local.test' '"user@other.example"@local.test' \
	'user@other.example@local.test' '@local.test:user@other.example' \
	'other.example!user@local.test' 'user@[127.0.0.1]' 'user@other.example.' \
	'user@OTHER.example' '"user%other"@local.test' 'someone@elsewhere.test'; do
	out=$(chk $ip "<$r>")
	if [ "$(decided "$out")" = RELAY_DENIED ] && [ "$(code "$out")" = 554 ]; then
		ok "relay: <$r> refused with 554"
	else
		not_ok "relay: <$r> refused with 554" "$out"
	fi
done
sqlite3 "$MXW_RUN/mxwarden.db" "DELETE FROM counters" 2>/dev/null
for r in 'known@local.test' 'known@LOCAL.TEST.' '"known"@local.test' 'postmaster'; do
	out=$(chk 127.0.0.11 "<$r>")
	d=$(decided "$out")
	if [ "$d" != RELAY_DENIED ] && [ "$d" != RCPT_UNKNOWN ]; then
		ok "relay: <$r> is local"
	else
		not_ok "relay: <$r> is local" "$out"
	fi
done
out=$("$MXW" check -c "$conf" --ip 127.0.0.12 --helo h.test --from a@sender.test \
	--auth alice --rcpt someone@elsewhere.test --json <"$MXW_RUN/m.eml" 2>/dev/null)
unlike "$(decided "$out")" RELAY_DENIED "relay: an authenticated client may relay"
sqlite3 "$MXW_RUN/mxwarden.db" "DELETE FROM counters" 2>/dev/null

# ---- rate limit per IP: 3 pass, the 4th is 451, recovered after 4 s ----
sed -i 's/^ratelimit per_ip.*/ratelimit per_ip ip 3\/4s/' "$MXW_RUN/local.rules"
res=""
for i in 1 2 3 4; do
	out=$(chk 127.0.0.20 known@local.test)
	res="$res $(decided "$out"):$(code "$out")"
done
is "$res" " null: null: null: RATE_LIMITED:451" "rate limit per ip: exactly 3 pass"
sleep 4.5
out=$(chk 127.0.0.20 known@local.test)
unlike "$(decided "$out")" RATE_LIMITED "rate limit per ip: recovers after the window"
sqlite3 "$MXW_RUN/mxwarden.db" "DELETE FROM counters" 2>/dev/null

# ---- harvest: IP A blocked after 3 unknown recipients, IP B not ----
sed -i 's/^ratelimit per_ip.*/ratelimit per_ip ip 1000\/1h/' "$MXW_RUN/local.rules"
res=""
for u in x1 x2 x3; do
	out=$(chk 127.0.0.30 "$u@local.test")
	res="$res $(decided "$out"):$(code "$out")"
done
is "$res" " RCPT_UNKNOWN:550 RCPT_UNKNOWN:550 HARVEST_BLOCKED:421" \
	"harvest: the 3rd unknown recipient blocks the client"
out=$(chk 127.0.0.30 known@local.test)
is "$(decided "$out"):$(code "$out")" "HARVEST_BLOCKED:421" "harvest: a blocked client is refused even for a valid recipient"
out=$(chk 127.0.0.31 known@local.test)
unlike "$(decided "$out")" HARVEST_BLOCKED "harvest: a second client IP is unaffected"
out=$("$MXW" db -c "$conf" list blocks)
like "$out" "127.0.0.30 +harvest" "db list blocks shows the harvest block"
sleep 4.5
out=$(chk 127.0.0.30 known@local.test)
unlike "$(decided "$out")" HARVEST_BLOCKED "harvest: the block expires"

# ---- db block / unblock / whitelist ----
run_ok "db block a CIDR" "$MXW" db -c "$conf" block 127.0.1.0/24 --for 1h
out=$(chk 127.0.1.9 known@local.test)
is "$(decided "$out")" HARVEST_BLOCKED "db block: the CIDR is blocked"
out=$("$MXW" db -c "$conf" list blocks --json)
like "$out" '"key":"127.0.1.0/24","value":"admin"' "db list --json shows the block"
run_ok "db unblock" "$MXW" db -c "$conf" unblock 127.0.1.0/24
out=$(chk 127.0.1.9 known@local.test)
unlike "$(decided "$out")" HARVEST_BLOCKED "db unblock: the client is served again"
"$MXW" db -c "$conf" unblock 127.0.1.0/24 >/dev/null 2>&1
is "$?" 1 "db unblock of an unknown entry exits 1"
out=$("$MXW" db -c "$conf" block not-an-ip 2>&1)
is "$?" 2 "db block refuses a non-address"
# An IP is stored in its canonical text, the form a lookup uses: a block
# typed otherwise takes effect, and is removed the same way.
out=$("$MXW" db -c "$conf" block 2001:DB8:0:0::7 --for 1h)
is "$out" "block 2001:db8::7" "db block stores an IPv6 address in canonical form"
out=$(chk 2001:db8::7 known@local.test)
is "$(decided "$out")" HARVEST_BLOCKED "db block: the IPv6 client is blocked"
run_ok "db unblock in another spelling" "$MXW" db -c "$conf" unblock 2001:DB8::0:7
out=$(chk 2001:db8::7 known@local.test)
unlike "$(decided "$out")" HARVEST_BLOCKED "db unblock: the IPv6 client is served again"
# Thousands of harvest blocks of other IPs: a client's lookup finds its
# own block and the networks, and reads no other entry (the listing
# query's plan is fixed by INDEXED BY; unit-tested in store_test).
/usr/bin/python3 - "$MXW_RUN/mxwarden.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10)
now = int(time.time())
db.executemany("INSERT OR REPLACE INTO entries VALUES ('block', ?, 'harvest', ?, ?)",
               [("10.77.%d.%d" % (i // 250, i % 250), now, now + 3600) for i in range(5000)])
db.commit()
PY
out=$(chk 10.77.3.9 known@local.test)
is "$(decided "$out")" HARVEST_BLOCKED "5000 harvest blocks: one of them is found"
out=$(chk 10.78.3.9 known@local.test)
unlike "$(decided "$out")" HARVEST_BLOCKED "5000 harvest blocks: another client is not blocked"
out=$("$MXW" db -c "$conf" stats --json)
like "$out" '"schema":3,' "db stats --json gives the schema version"
run_ok "db prune" "$MXW" db -c "$conf" prune
run_ok "db vacuum" "$MXW" db -c "$conf" vacuum

# ---- greylisting: defer, retry too early, pass after the delay, AWL ----
cat >>"$MXW_RUN/local.rules" <<'RULES'
greylist enable on
greylist delay 2s
greylist retry_window 1h
greylist awl_passes 1
RULES
out=$(chk 127.0.2.5 known@local.test)
is "$(decided "$out"):$(code "$out")" "GREYLISTED:451" "greylist: first attempt deferred"
out=$(chk 127.0.2.5 known@local.test)
is "$(decided "$out")" GREYLISTED "greylist: an early retry is deferred again"
sleep 2.5
out=$(chk 127.0.2.5 known@local.test)
unlike "$(decided "$out")" GREYLISTED "greylist: the retry after the delay passes"
out=$(chk 127.0.2.77 postmaster@local.test b@sender.test)
unlike "$(decided "$out")" GREYLISTED "greylist: the /24 is auto-whitelisted"
out=$("$MXW" db -c "$conf" list greylist)
like "$out" "awl +127.0.2.0/24" "db list greylist shows the auto-whitelist"
"$MXW" db -c "$conf" whitelist 127.0.3.0/24 >/dev/null
out=$(chk 127.0.3.1 known@local.test)
unlike "$(decided "$out")" GREYLISTED "greylist: a whitelisted network is skipped"
# Addresses and domains are stored in lower case and looked up so: the
# lookup reads this client's, sender's and domain's entries only.
out=$("$MXW" db -c "$conf" whitelist Grey@Sender.TEST)
is "$out" "whitelist grey@sender.test (no expiry)" "db whitelist stores an address in lower case"
out=$(chk 127.0.5.1 known@local.test GREY@sender.test)
unlike "$(decided "$out")" GREYLISTED "greylist: a whitelisted sender is skipped, whatever its case"
"$MXW" db -c "$conf" whitelist @Other.Test >/dev/null
out=$(chk 127.0.5.2 known@local.test someone@other.test)
unlike "$(decided "$out")" GREYLISTED "greylist: a whitelisted sender domain is skipped"
out=$(chk 127.0.5.3 known@local.test someone@sender.test)
is "$(decided "$out")" GREYLISTED "greylist: ... and another sender is not"
sed -i '/^greylist/d' "$MXW_RUN/local.rules"

# ---- two processes at once on one database: exact counts ----
sed -i 's/^ratelimit per_ip.*/ratelimit per_ip ip 1000\/1h/' "$MXW_RUN/local.rules"
for p in 1 2; do
	( for i in $(seq 1 15); do chk 127.0.4.1 known@local.test >/dev/null; done ) &
	pids[$p]=$!
done
wait "${pids[1]}" "${pids[2]}"
n=$(sqlite3 "$MXW_RUN/mxwarden.db" "SELECT count FROM counters WHERE kind='rate:per_ip' AND key='127.0.4.1'")
is "$n" 30 "two processes: 30 increments, none lost"

# ---- database locked beyond the timeout: on_db_error, then recovery ----
fifo=$MXW_RUN/lock.fifo
mkfifo "$fifo"
sqlite3 "$MXW_RUN/mxwarden.db" <"$fifo" >/dev/null 2>&1 &
lockpid=$!
mxw_track_pid "$lockpid"
exec 7>"$fifo"
echo "BEGIN IMMEDIATE; INSERT INTO meta VALUES ('lock', 'held');" >&7
for i in $(seq 1 50); do
	# held once another writer cannot begin
	sqlite3 "$MXW_RUN/mxwarden.db" ".timeout 10" "BEGIN IMMEDIATE" "ROLLBACK" \
		>/dev/null 2>&1 || break
	sleep 0.1
done
out=$(chk 127.0.5.1 known@local.test)
is "$(decided "$out"):$(code "$out")" "STATE_DB_ERROR:451" \
	"locked database, on_db_error = tempfail: 451"
out=$("$MXW" check -c "$conf" -o on_db_error=accept --state --ip 127.0.5.1 \
	--helo good10.iprev.test --from a@sender.test --rcpt known@local.test \
	--json <"$MXW_RUN/m.eml" 2>/dev/null)
like "$out" '"STATE_DB_ERROR"' "locked database, on_db_error = accept: noted"
unlike "$(decided "$out")" STATE_DB_ERROR "locked database, on_db_error = accept: not refused"
echo "ROLLBACK;" >&7
exec 7>&-
stop_pid "$lockpid" 5 >/dev/null
out=$(chk 127.0.5.1 known@local.test)
unlike "$(decided "$out")" STATE_DB_ERROR "the database is back: served normally"

done_testing
