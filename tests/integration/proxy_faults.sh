#!/usr/bin/env bash
# proxy_faults.sh - the SMTP proxy when the backend or the client fails
# mid-transaction: what the client got and what the backend received
# (nothing lost: the client never gets 250 for a message the backend
# did not accept; nothing duplicated: the proxy never sends a message
# twice).
#
# Part 1: a scripted backend (proxy/fault_backend.py), for faults a real
#         MTA cannot be made to show: it drops the connection at DATA,
#         after the message, at RCPT; answers 451 or 554 to DATA, 451
#         to the final dot; never answers the final dot. After a
#         refusal the same session's next transaction must go through.
#         A client vanishing in DATA: the backend never sees DATA.
# Part 2: a real Postfix (XCLIENT authorized) relaying to smtp-sink: a
#         client that disconnects mid-DATA after a first message in the
#         same session; the first arrives once, the second never, and
#         no spool file is left behind.
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=proxy_faults

mxw_require "(the proxy drops to user nobody)" postfix smtp-sink /usr/bin/python3
mxw_rundir
. "$MXW_TOP/tests/integration/proxy/common.sh"

# codes OUTPUT - smtpc's final reply codes; a reset after the server
# closed counts as EOF.
codes() { printf '%s\n' "$1" | grep -E '^[0-9]{3} |^EOF|^TIMEOUT|^OSERROR' |
	sed -E 's/^([0-9]{3}) .*/\1/; s/^OSERROR.*/EOF/' | tr '\n' ' '; }

if ! start_dns "$MXW_RUN"; then
	not_ok "test DNS starts"; done_testing
fi

# ---- part 1: the scripted backend ----
FB=$MXW_RUN/fb
mkdir -p "$FB"
FB_PORT=$(free_port)
/usr/bin/python3 "$PROXY_HELPERS/fault_backend.py" "$FB_PORT" "$FB" >"$FB/stderr" 2>&1 &
FB_PID=$!
mxw_track_pid "$FB_PID"
if ! wait_port "$FB_PORT" 10; then
	not_ok "scripted backend listens" "$(cat "$FB/stderr")"; done_testing
fi
mkdir -p "$MXW_RUN/spool1"
chown nobody "$MXW_RUN/spool1"
# One backend connection per client session here (the scripted backend
# reads its fault mode at each new connection): no reuse.
if start_proxy f1 "127.0.0.1:$FB_PORT" "proxy_backend_forward = none" \
	"proxy_backend_timeout = 5s" "proxy_backend_data_timeout = 3s" \
	"proxy_spool_dir = $MXW_RUN/spool1" "proxy_backend_reuse = 0"; then
	ok "proxy starts in front of the scripted backend"
else
	not_ok "proxy starts in front of the scripted backend" \
		"$(tail -20 "$MXW_RUN/f1/mxwarden.log")"
	done_testing
fi
P1=$PROXY_PORT

# fb_mark - remember where the backend's log ends now.
fb_mark() { FB_L0=$(wc -l <"$FB/log" 2>/dev/null || echo 0); }
# fb_new REGEX - how many log lines since fb_mark match REGEX.
fb_new() {
	local i
	# Let the backend's thread log its close first (bounded).
	for ((i = 0; i < 30; i++)); do
		tail -n +$((FB_L0 + 1)) "$FB/log" 2>/dev/null | grep -q '^close ' && break
		sleep 0.1
	done
	tail -n +$((FB_L0 + 1)) "$FB/log" 2>/dev/null | grep -cE "$1"
}

# txn SUBJECT - the steps of one transaction (MAIL to the final dot).
txn() {
	printf '%s\n' send:'MAIL FROM:<a@mx.sender.test>\r\n' reply \
		send:'RCPT TO:<u@local.test>\r\n' reply send:'DATA\r\n' reply \
		send:"From: <a@mx.sender.test>\\r\\nTo: <u@local.test>\\r\\nSubject: $1\\r\\n\\r\\nbody of $1\\r\\n.\\r\\n" reply
}

# fault MODE NAME WANT_CODES WANT_MSGS [SECOND] - one session against the
# backend in MODE: EHLO, a transaction with subject NAME, and (SECOND)
# a second transaction NAME-2 in the same session. Asserts the client's
# reply codes and how many messages the backend read (WANT_MSGS: of
# NAME, then of NAME-2).
fault() {
	local mode=$1 name=$2 want=$3 msgs=$4 second=${5:-} steps out
	echo "$mode" >"$FB/mode"
	fb_mark
	mapfile -t steps < <(txn "$name")
	[ -n "$second" ] && mapfile -t -O ${#steps[@]} steps < <(txn "$name-2")
	out=$(smtpc "$P1" send:'EHLO client.test\r\n' reply "${steps[@]}" \
		send:'QUIT\r\n' drain)
	is "$(codes "$out")" "$want" "$mode: the client's replies"
	printf '%s\n' "$out" >"$FB/client.$mode"
	local got
	got=$(fb_new "^msg [0-9]+ [0-9]+ $name\$")
	[ -n "$second" ] && got="$got $(fb_new "^msg [0-9]+ [0-9]+ $name-2\$")"
	is "$got" "$msgs" "$mode: the backend read the message(s) $msgs time(s)"
	FB_OUT=$out
}

# The baseline: no fault, one message, once.
fault ok base "220 250 250 250 354 250 221 EOF " 1
# Replies that arrive in pieces (3 bytes at a time, the greeting and
# the EHLO's lines too) are put together, whatever the waits between.
fault trickle trickle "220 250 250 250 354 250 221 EOF " 1
like "$FB_OUT" '250 2\.0\.0 Ok: queued as F[0-9]+' "trickle: the backend's own 250, whole"
like "$FB_OUT" '250 2\.0\.0 Ok: queued as F[0-9]+' "ok: the client gets the backend's own 250"
m=$(ls "$FB"/msg.* 2>/dev/null | head -1)
if [ -n "$m" ]; then
	like "$(header_of "$m" Authentication-Results)" '^mx\.mxw\.test;' \
		"ok: the backend's copy carries the proxy's Authentication-Results"
	is "$(grep -c '^body of base' "$m")" 1 "ok: the backend's copy has the body once"
else
	not_ok "ok: the backend wrote the message"
fi

# Connection dropped when DATA is sent: 421, nothing read.
fault drop-data dropdata "220 250 250 250 354 421 EOF " 0
like "$FB_OUT" '421 4\.4\.2 ' "drop-data: 421 4.4.2 (try again later)"
# Dropped after the message, before any reply: 421; the backend read
# it once (no resend), and the client was not told 250.
fault drop-dot dropdot "220 250 250 250 354 421 EOF " 1
unlike "$FB_OUT" '^250 2\.0\.0' "drop-dot: no 250 for the message"
# 451 and 554 to DATA: the backend's reply passed on; the session goes
# on and the next transaction is delivered once.
fault data-451 data451 "220 250 250 250 354 451 250 250 354 250 221 EOF " "0 1" second
like "$FB_OUT" '451 4\.3\.0 Error: scripted DATA failure' "data-451: the backend's own 451 text"
fault data-554 data554 "220 250 250 250 354 554 250 250 354 250 221 EOF " "0 1" second
like "$FB_OUT" '554 5\.5\.1 Error: scripted DATA refusal' "data-554: the backend's own 554 text"
# 451 to the final dot: passed on; read once, not resent; the next
# transaction goes through.
fault dot-451 dot451 "220 250 250 250 354 451 250 250 354 250 221 EOF " "1 1" second
like "$FB_OUT" '451 4\.3\.0 Error: scripted failure at end of data' "dot-451: the backend's own 451 text"
# No answer to the final dot: 421 after proxy_backend_data_timeout.
t0=$SECONDS
fault dot-stall dotstall "220 250 250 250 354 421 EOF " 1
like "$((SECONDS - t0))" '^([0-9]|1[0-9])$' "dot-stall: the client is answered within 20 s (data timeout 3 s)"
# Connection dropped at RCPT: 421 there.
fault drop-rcpt droprcpt "220 250 250 421 EOF " 0

# The client vanishes in DATA: the message was never sent on.
echo ok >"$FB/mode"
fb_mark
out=$(smtpc "$P1" send:'EHLO client.test\r\n' reply send:'MAIL FROM:<a@mx.sender.test>\r\n' reply \
	send:'RCPT TO:<u@local.test>\r\n' reply send:'DATA\r\n' reply \
	send:'Subject: vanish\r\n\r\nhalf a mess')
is "$(codes "$out")" "220 250 250 250 354 " "client vanishing in DATA: got 354, then left"
is "$(fb_new '^cmd [0-9]+ DATA$')/$(fb_new '^msg ')" "0/0" \
	"client vanishing in DATA: the backend never saw DATA nor any message"
is "$(fb_new '^close ')" 1 "client vanishing in DATA: the backend connection is closed"

# Sessions waiting for the backend's replies hold no worker: 40 clients
# (20 from each of two addresses: the per-IP limit) wait on RCPT replies
# the backend gives after 3 s each, all at once. The proxy's threads stay
# few (one per waiting session would be 40 more), another client is
# answered meanwhile, and every RCPT gets its 250.
# parallel_start PORT N OUT IP... - parallel_rcpt.py with N sessions
# from each IP, in the background (output in OUT-IP.out); PAR_PIDS.
parallel_start() {
	local port=$1 n=$2 out=$3 ip
	shift 3
	PAR_PIDS=()
	for ip in "$@"; do
		/usr/bin/python3 "$PROXY_HELPERS/parallel_rcpt.py" "$port" "$n" "$ip" \
			>"$out-$ip.out" 2>&1 &
		PAR_PIDS+=($!)
		mxw_track_pid $!
	done
}
# proxy_threads - the running proxy's thread count.
proxy_threads() { awk '$1 == "Threads:" { print $2 }' "/proc/$PROXY_PID/status"; }
echo slow-rcpt >"$FB/mode"
parallel_start "$P1" 20 "$FB/parallel" 127.0.0.21 127.0.0.22
for ((i = 0; i < 50; i++)); do	# until the backend holds the RCPTs
	[ "$(grep -c '^cmd [0-9]* RCPT$' "$FB/log")" -ge 40 ] && break
	sleep 0.1
done
threads=$(proxy_threads)
other=$(codes "$(smtpc "$P1" send:'EHLO other.test\r\n' reply send:'QUIT\r\n' drain)")
wait "${PAR_PIDS[@]}"
# A pipelining client whose next command (DATA) arrives while the
# session waits for the backend's RCPT reply: the proxy watches the
# client's socket edge-triggered, so that input must still be read once
# the reply has been passed on (else the client would wait for its 354
# until its timeout).
t0=$SECONDS
out=$(smtpc "$P1" send:'EHLO pipe.test\r\n' reply \
	send:'MAIL FROM:<a@mx.sender.test>\r\n' reply \
	send:'RCPT TO:<u@local.test>\r\n' sleep:0.5 send:'DATA\r\n' reply reply \
	send:'From: <a@mx.sender.test>\r\nSubject: edge\r\n\r\nbody\r\n.\r\nQUIT\r\n' reply reply)
is "$(codes "$out")" "220 250 250 250 354 250 221 " \
	"pipelining: DATA sent while the backend is slow on RCPT is read when its reply has been passed on"
is "$((SECONDS - t0 < 9))" 1 "... at once after the backend's delay (took $((SECONDS - t0)) s)"
echo ok >"$FB/mode"
is "$(cat "$FB"/parallel-*.out | cut -d' ' -f1-3 | tr '\n' ' ')" "rcpt 20 0 rcpt 20 0 " \
	"slow backend: 40 sessions waiting on RCPT at once all get the backend's 250"
like "${threads:-none}" '^([1-9]|1[0-9])$' \
	"slow backend: the proxy has few threads while 40 sessions wait (not one each)"
is "$other" "220 250 221 EOF " "slow backend: another client is answered meanwhile"

# Every message the backend read was read exactly once per session.
is "$(grep -c '^msg ' "$FB/log")" "$(ls "$FB"/msg.* | wc -l)" "backend log and files agree"
is "$(find "$MXW_RUN/spool1" -type f | wc -l)" 0 "no spool file left behind"
stop_pid "$PROXY_PID" 20
is "$MXW_STOP_STATUS" 0 "proxy (scripted backend) stops cleanly"

# ---- part 1b: backend connections kept for the next client ----
# (proxy_backend_reuse, on by default with proxy_backend_forward = none)
# session SUBJECT - one client session with one transaction; its codes.
session() {
	local steps
	mapfile -t steps < <(txn "$1")
	codes "$(smtpc "$P1" send:'EHLO client.test\r\n' reply "${steps[@]}" \
		send:'QUIT\r\n' drain)"
}
# fb_since REGEX - backend log lines since fb_mark that match REGEX.
fb_since() { tail -n +$((FB_L0 + 1)) "$FB/log" 2>/dev/null | grep -cE "$1"; }
echo ok >"$FB/mode"
if start_proxy r1 "127.0.0.1:$FB_PORT" "proxy_backend_forward = none"; then
	P1=$PROXY_PORT
	fb_mark
	is "$(session reuse-a)/$(session reuse-b)" \
		"220 250 250 250 354 250 221 EOF /220 250 250 250 354 250 221 EOF " \
		"reuse: two client sessions one after the other, both delivered"
	# (start_proxy's probe session may have opened the connection.)
	like "$(fb_since '^conn ')" '^[01]$' "reuse: at most one new backend connection"
	is "$(grep -E '^msg [0-9]+ [0-9]+ reuse-[ab]$' "$FB/log" | cut -d' ' -f2 |
		uniq | wc -l)/$(fb_since '^msg [0-9]+ [0-9]+ reuse-[ab]$')" "1/2" \
		"reuse: one backend connection carried both messages"
	# A session that ended cleanly hands its connection on as it is;
	# the next client's EHLO (which resets the backend's session, RFC
	# 5321 4.1.4) reaches it before that client's MAIL.
	is "$(fb_since '^cmd [0-9]+ RSET$')" 0 \
		"reuse: a clean session's connection is kept without an RSET"
	cid=$(grep -E '^msg [0-9]+ [0-9]+ reuse-a$' "$FB/log" | cut -d' ' -f2)
	like "$(grep -E "^cmd ${cid:-none} " "$FB/log" | cut -d' ' -f3 |
		tr '\n' ' ')" 'EHLO MAIL RCPT DATA EHLO MAIL RCPT DATA $' \
		"reuse: each session's EHLO reached the kept connection before its MAIL"
	# A session that ends inside a transaction: RSET, then kept.
	fb_mark
	is "$(codes "$(smtpc "$P1" send:'EHLO client.test\r\n' reply \
		send:'MAIL FROM:<a@mx.sender.test>\r\n' reply \
		send:'RCPT TO:<u@local.test>\r\n' reply send:'QUIT\r\n' drain)")" \
		"220 250 250 250 221 EOF " "reuse: a session that quits inside a transaction"
	for ((i = 0; i < 50; i++)); do
		[ "$(fb_since '^cmd [0-9]+ RSET$')" != 0 ] && break
		sleep 0.1
	done
	is "$(fb_since '^cmd [0-9]+ RSET$')/$(fb_since '^close ')" "1/0" \
		"reuse: ... its connection is RSET and kept, not closed"
	# On a kept connection the EHLO is answered at once (its
	# capabilities are known) and the backend's reply read before the
	# next command: a refusal is passed on as that command's answer.
	echo ehlo-refuse >"$FB/mode"
	is "$(codes "$(smtpc "$P1" send:'EHLO client.test\r\n' reply \
		send:'MAIL FROM:<a@mx.sender.test>\r\n' reply \
		send:'MAIL FROM:<a@mx.sender.test>\r\n' reply send:'QUIT\r\n' drain)")" \
		"220 250 550 503 221 EOF " \
		"reuse: the backend's refusal of a kept connection's EHLO answers the next command"
	is "$(codes "$(smtpc "$P1" send:'HELO client.test\r\n' reply \
		send:'MAIL FROM:<a@mx.sender.test>\r\n' reply \
		send:'MAIL FROM:<a@mx.sender.test>\r\n' reply send:'QUIT\r\n' drain)")" \
		"220 250 550 503 221 EOF " \
		"reuse: ... and so does its refusal of a kept connection's HELO"
	echo ok >"$FB/mode"
	is "$(session reuse-d)" "220 250 250 250 354 250 221 EOF " \
		"reuse: ... and the next session goes through"
	# The backend goes away while the connection is kept: the next
	# session finds it dead and connects afresh, the client sees nothing.
	stop_pid "$FB_PID" 10
	/usr/bin/python3 "$PROXY_HELPERS/fault_backend.py" "$FB_PORT" "$FB" \
		>>"$FB/stderr" 2>&1 &
	FB_PID=$!
	mxw_track_pid "$FB_PID"
	wait_port "$FB_PORT" 10
	fb_mark
	is "$(session reuse-c)" "220 250 250 250 354 250 221 EOF " \
		"reuse: a kept connection the backend closed is not used"
	is "$(fb_since '^msg [0-9]+ [0-9]+ reuse-c$')" 1 "reuse: ... the message arrives once"
	is "$(grep -c 'BACKEND FAILURE' "$MXW_RUN/r1/mxwarden.log")" 0 \
		"reuse: no backend failure logged"
	stop_pid "$PROXY_PID" 20
	is "$MXW_STOP_STATUS" 0 "reuse: the proxy stops cleanly (kept connections closed)"
else
	not_ok "proxy with backend reuse starts" "$(tail -20 "$MXW_RUN/r1/mxwarden.log")"
fi

# ---- part 1c: a backend that never greets is taken as down ----
# A listener that never accepts: the kernel completes each connection,
# the greeting never comes. After 3 greeting timeouts in a row sessions
# get 421 at once for 10 s instead of each holding a worker that long;
# then the next session tries again.
# silent_listener PORT [full] - listens on PORT (backlog 64) and never
# accepts, for 120 s at most; sets SILENT_PID. full: a backlog of 0,
# filled at once, so that the kernel drops every new connection attempt.
silent_listener() {
	/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
full = len(sys.argv) > 3
s.listen(0 if full else 64)
fill = []
for i in range(3 if full else 0):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", int(sys.argv[1])))
    except BlockingIOError:
        pass
    fill.append(c)
open(sys.argv[2], "w").close()
time.sleep(120)' "$1" "$MXW_RUN/silent-$1.ready" ${2:+full} &
	SILENT_PID=$!
	mxw_track_pid "$SILENT_PID"
	# (A connection attempt would hang on a full one: a file says ready.)
	for ((i = 0; i < 100; i++)); do
		[ -e "$MXW_RUN/silent-$1.ready" ] && break
		sleep 0.1
	done
}
SILENT_PORT=$(free_port)
silent_listener "$SILENT_PORT"
if start_proxy d1 "127.0.0.1:$SILENT_PORT" "proxy_backend_forward = none" \
	"proxy_backend_timeout = 2s"; then
	P1=$PROXY_PORT
	# Sessions until one is refused at once (start_proxy's probe was
	# the first session already: 2 or 3 slow ones before).
	seen=
	for i in 1 2 3 4; do
		t0=$SECONDS
		out=$(smtpc "$P1" drain)
		t=$((SECONDS - t0 >= 1 ? 1 : 0))
		seen="$seen$(codes "$out")$([ $t = 1 ] && echo slow || echo fast) "
		[ $t = 0 ] && break
	done
	like "$seen" '^(421 EOF slow ){2,3}' \
		"silent backend: 421 after each greeting timeout"
	like "$seen" '421 EOF fast $' \
		"after 3 timeouts in a row: 421 at once (backend taken as down)"
	grep -q 'BACKEND FAILURE .* taken as down for [0-9]* s more after 3 timeouts' \
		"$MXW_RUN/d1/mxwarden.log" && ok "taken as down: logged" ||
		not_ok "taken as down: logged"
	# The backend comes back; once the 10 s are over, mail flows again.
	stop_pid "$SILENT_PID" 5
	echo ok >"$FB/mode"
	/usr/bin/python3 "$PROXY_HELPERS/fault_backend.py" "$SILENT_PORT" "$FB" \
		>>"$FB/stderr" 2>&1 &
	mxw_track_pid "$!"
	wait_port "$SILENT_PORT" 10
	sleep 10
	is "$(session back-up)" "220 250 250 250 354 250 221 EOF " \
		"backend back after the down time: the next session goes through"
	stop_pid "$PROXY_PID" 20
	is "$MXW_STOP_STATUS" 0 "down-backend proxy stops cleanly"
else
	not_ok "proxy before a silent backend starts" "$(tail -20 "$MXW_RUN/d1/mxwarden.log")"
fi

# Sessions waiting for a backend's connect or greeting hold no worker.
# held_sessions NAME LISTENER_PORT WHAT OPTION - a proxy NAME before the
# listener, OPTION its timeout for WHAT (3 s); 30 clients at once (15 from
# each of two addresses: the per-IP limit); the proxy keeps few threads
# while they wait, none gets further, and the failures are logged.
held_sessions() {
	local name=$1 port=$2 what=$3 opt=$4 threads
	if ! start_proxy "$name" "127.0.0.1:$port" "proxy_backend_forward = none" \
		"$opt = 3s"; then
		not_ok "proxy $name starts" "$(tail -20 "$MXW_RUN/$name/mxwarden.log")"
		return
	fi
	parallel_start "$PROXY_PORT" 15 "$MXW_RUN/$name" 127.0.0.25 127.0.0.26
	sleep 1.5
	threads=$(proxy_threads)
	wait "${PAR_PIDS[@]}"
	like "${threads:-none}" '^([1-9]|1[0-9])$' \
		"30 sessions waiting for the backend's $what: few proxy threads (not one each)"
	is "$(cat "$MXW_RUN/$name"-*.out | cut -d' ' -f1-3 | tr '\n' ' ')" \
		"rcpt 0 15 rcpt 0 15 " "... and no session got further than the $what"
	like "$(grep -c "BACKEND FAILURE .* at $what" "$MXW_RUN/$name/mxwarden.log")" \
		'^([3-9]|[1-9][0-9])$' "... they got 421 when it timed out (logged)"
	stop_pid "$PROXY_PID" 20
	is "$MXW_STOP_STATUS" 0 "$what-wait proxy stops cleanly"
}
# A listener that never greets (a Postfix at its process limit leaves new
# connections waiting so).
SILENT2_PORT=$(free_port)
silent_listener "$SILENT2_PORT"
held_sessions d2 "$SILENT2_PORT" greeting proxy_backend_timeout
# A listener whose queue is full: new connections are not answered at
# all (as behind a firewall that drops them).
SILENT3_PORT=$(free_port)
silent_listener "$SILENT3_PORT" full
held_sessions d3 "$SILENT3_PORT" connect proxy_backend_connect_timeout

# ---- part 2: a real Postfix; the client disconnects mid-DATA ----
if ! start_sink "$MXW_RUN"; then
	not_ok "smtp-sink starts"; done_testing
fi
PF_EXTRA_MAIN="smtpd_authorized_xclient_hosts = 127.0.0.1"
if ! start_postfix "$MXW_RUN" ""; then
	not_ok "backend Postfix starts"; done_testing
fi
mkdir -p "$MXW_RUN/spool2"
chown nobody "$MXW_RUN/spool2"
if ! start_proxy f2 "127.0.0.1:$SMTP_PORT" "proxy_spool_memory = 1024" \
	"proxy_spool_dir = $MXW_RUN/spool2"; then
	not_ok "proxy starts in front of Postfix" "$(tail -20 "$MXW_RUN/f2/mxwarden.log")"
	done_testing
fi
P2=$PROXY_PORT

# A first message, then a second cut off after 4 KB (spooled to a file:
# proxy_spool_memory = 1024).
filler=$(printf 'filler line of the cut message ..............................\\r\\n%.0s' $(seq 1 70))
mapfile -t first < <(txn cutfirst)
out=$(smtpc "$P2" --ip 127.0.0.7 send:'EHLO client.test\r\n' reply "${first[@]}" \
	send:'MAIL FROM:<a@mx.sender.test>\r\n' reply send:'RCPT TO:<u@local.test>\r\n' reply \
	send:'DATA\r\n' reply send:"Subject: cutsecond\\r\\n\\r\\n$filler" sleep:0.5)
is "$(codes "$out")" "220 250 250 250 354 250 250 250 354 " \
	"Postfix: first message accepted, second cut in DATA"
sleep 1
for ((i = 0; i < 50; i++)); do
	grep -q 'disconnect from .*127\.0\.0\.7' "$MXW_RUN/postfix.log" && break
	sleep 0.2
done
wait_delivered 1 10
is "$(count_sink)" 1 "Postfix: exactly one message delivered"
d=$(delivered_file 1)
is "$(header_of "$d" Subject)" cutfirst "Postfix: the delivered one is the first"
is "$(postfix_queue_count)" 0 "Postfix: nothing left in its queue"
like "$(grep 'disconnect from .*127\.0\.0\.7' "$MXW_RUN/postfix.log" | tail -1)" \
	' bdat=1( |$)' "Postfix: it got one message, as BDAT (the cut message was never sent on)"
is "$(find "$MXW_RUN/spool2" -type f | wc -l)" 0 "the cut message's spool file is removed"
is "$(grep -c 'cutsecond' "$MXW_RUN/postfix.log")" 0 "Postfix never logged the cut message"

# The proxy still serves after that.
mapfile -t again < <(txn afterwards)
out=$(smtpc "$P2" --ip 127.0.0.7 send:'EHLO client.test\r\n' reply "${again[@]}" send:'QUIT\r\n' reply)
is "$(codes "$out")" "220 250 250 250 354 250 221 " "Postfix: the next session is served"
wait_delivered 2 10
is "$(count_sink)" 2 "Postfix: and its message delivered once"

stop_pid "$PROXY_PID" 20
is "$MXW_STOP_STATUS" 0 "proxy (Postfix) stops cleanly"
if grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' \
	"$MXW_RUN/f1/mxwarden.log" "$MXW_RUN/f2/mxwarden.log" >/dev/null; then
	not_ok "no sanitizer report" "$(grep -h -A10 -E 'Sanitizer|runtime error' \
		"$MXW_RUN/f1/mxwarden.log" "$MXW_RUN/f2/mxwarden.log" | head -30)"
else
	ok "no sanitizer report"
fi
done_testing
