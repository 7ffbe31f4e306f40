#!/usr/bin/env bash
# milter_sendmail.sh - the milter front end driven the way Sendmail 8.14+
# drives a milter, by miltertest (Lua scripts in miltertest/): Sendmail's
# macros (j, i, {auth_authen}, {rcpt_mailer}, {client_addr}), several
# messages per connection, abort, reply codes and header edits.
#
# Part 1: filter/milter.c over the scripted engine (tests/tools/milter_stub).
# Part 2: socket handling: unix sockets, a stale one, one in use.
# Part 3: mxwarden itself with the test DNS (skipped while not built).
set -u
. "$(dirname "$0")/lib.sh"
MXW_SUITE=milter_sendmail
LUA_DIR=$MXW_TOP/tests/integration/miltertest

command -v miltertest >/dev/null ||
	skip_all "miltertest not installed (contrib/install-deps.sh test)"
mxw_rundir

# run_lua NAME SOCKET SCRIPT - run a miltertest script; its "check ok|fail"
# lines become TAP lines prefixed with NAME; a script that dies is a
# failure too.
run_lua() {
	local name=$1 sock=$2 script=$3 out rc line
	out=$(timeout 120 miltertest -D "SOCK=$sock" -D "DIR=$LUA_DIR" \
		-s "$LUA_DIR/$script" 2>&1)
	rc=$?
	while IFS= read -r line; do
		case $line in
		"check ok "*)   ok "$name: ${line#check ok }" ;;
		"check fail "*) not_ok "$name: ${line#check fail }" ;;
		esac
	done <<<"$out"
	if [ $rc -ne 0 ] || ! grep -qx done <<<"$out"; then
		not_ok "$name: $script ran to the end" "exit $rc" "$(tail -5 <<<"$out")"
	else
		ok "$name: $script ran to the end"
	fi
}

# ---- part 1 ----

part1_trace() {
	local tr=$MXW_STUB_TRACE
	like "$(cat "$tr")" 'S1 connect ip=127\.0\.0\.9 port=[0-9]+ name=client\.sendmail\.test j=mx\.sendmail\.test' \
		"stub: connect facts and \$j reach the engine"
	like "$(cat "$tr")" 'S1 mail <ok@sender\.test> auth=alice tls=- qid=QID1' \
		"stub: {auth_authen} and i reach the engine at MAIL"
	like "$(cat "$tr")" 'S1 symbol RCPT_REJECTED_BY_MTA <nobody@local\.test>' \
		"stub: {rcpt_mailer} error: not a recipient, noted"
	unlike "$(cat "$tr")" 'rcpt <?nobody@local\.test' \
		"stub: {rcpt_mailer} error: not added as a recipient"
	like "$(tr '\n' '|' <"$tr")" 'S1 eom qid=QID1 body=7\|S1 reset\|S1 mail <ok2@sender\.test>' \
		"stub: a new MAIL after a message resets the transaction"
	like "$(tr '\n' '|' <"$tr")" 'S1 rcpt <?u@local\.test>? qid=QID3\|S1 reset\|S1 free' \
		"stub: abort resets, close frees"
	like "$(cat "$tr")" 'S1 header Subject:\[  leading space\]' \
		"stub: header value with its exact leading white space"
	like "$(cat "$tr")" 'S1 header Authentication-Results:\[ mx\.mxw\.test;\\n\\tdkim=pass header\.d=x\]' \
		"stub: folded header value kept raw"
	like "$(cat "$tr")" 'S2 connect ip=127\.0\.0\.10 port=[0-9]+ name=- ' \
		"stub: Sendmail's [address] host name means no verified name"
	like "$(cat "$tr")" 'S3 connect ip=2001:db8::5 port=2525 name=v6\.client\.test' \
		"stub: {client_addr} (IPv6: prefix) and {client_port} when libmilter has no address"
	is "$(grep -c ' connect ' "$tr")" "$(grep -c ' free$' "$tr")" \
		"stub: every connection's transaction freed"
}

part1() {
	local run=$MXW_RUN/p1
	mkdir -p "$run"
	start_milter_stub "$run" || { not_ok "stub: starts"; return; }
	ok "stub: starts"
	run_lua stub "$MXW_MILTER_SPEC" stub.lua
	sleep 0.3
	part1_trace
	stop_pid "$MXW_PID" 20
	is "$MXW_STOP_STATUS" 0 "stub: SIGTERM: clean exit (0: no leak under ASan)"
	like "$MXW_STOP_SECS" '^([0-9]|1[0-5])$' "stub: stops within 15 s"
	unlike "$(cat "$run/stub.log")" 'Sanitizer|runtime error' "stub: no sanitizer report"
}

# part1_drain - SIGTERM while an MTA session is open and idle.
part1_drain() {
	local run=$MXW_RUN/p1d out i mt_pid
	mkdir -p "$run"
	start_milter_stub "$run" || { not_ok "drain: stub starts"; return; }
	out=$run/drain.out
	timeout 60 miltertest -D "SOCK=$MXW_MILTER_SPEC" -D "DIR=$LUA_DIR" \
		-s "$LUA_DIR/drain.lua" >"$out" 2>&1 &
	mt_pid=$!
	for ((i = 0; i < 100; i++)); do
		grep -q ' mail <ok@sender.test>' "$MXW_STUB_TRACE" && break
		sleep 0.1
	done
	stop_pid "$MXW_PID" 20
	is "$MXW_STOP_STATUS" 0 "drain: stop with an idle session open: exit 0, nothing leaked"
	like "$MXW_STOP_SECS" '^([0-9]|1[0-5])$' "drain: ... within 15 s"
	like "$(cat "$run/stub.log")" '1 idle MTA session\(s\) dropped at stop' \
		"drain: the idle session is dropped"
	like "$(cat "$MXW_STUB_TRACE")" 'S1 free' "drain: its transaction freed"
	wait_exit "$mt_pid" 30
	like "$(cat "$out")" 'check ok MAIL after the stop is not answered' \
		"drain: the MTA side sees the session end"
}

# ---- part 2: unix sockets ----

# stub_unix RUNDIR SOCKPATH LOG - start the stub on unix:SOCKPATH; sets PID.
stub_unix() {
	"$MXW_BIN/tests/tools/milter_stub" -p "unix:$2" -t "$1/unix.trace" \
		>>"$3" 2>&1 &
	PID=$!
	mxw_track_pid "$PID"
}

# wait_exit PID SECONDS - until PID has exited; sets MXW_STOP_STATUS.
wait_exit() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	stop_pid "$1" 1
}

part2() {
	local run=$MXW_RUN/p2 sock a_pid i
	mkdir -p "$run"
	sock=$run/m.sock
	"$(_mxw_python)" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$sock"
	[ -S "$sock" ] || { not_ok "unix: a stale socket made for the test"; return; }
	stub_unix "$run" "$sock" "$run/a.log"
	a_pid=$PID
	for ((i = 0; i < 100; i++)); do
		grep -q 'listening on' "$run/a.log" && break
		kill -0 "$a_pid" 2>/dev/null || break
		sleep 0.1
	done
	like "$(cat "$run/a.log")" 'removed stale socket' "unix: a stale socket is replaced"
	run_lua unix "unix:$sock" stub.lua
	stub_unix "$run" "$sock" "$run/b.log"
	wait_exit "$PID" 10
	is "$MXW_STOP_STATUS" 1 "unix: a second instance on a socket in use fails"
	like "$(cat "$run/b.log")" 'in use by another process' "unix: ... and says why"
	kill -0 "$a_pid" 2>/dev/null && [ -S "$sock" ]
	is $? 0 "unix: the first instance keeps its socket"
	stop_pid "$a_pid" 20
	is "$MXW_STOP_STATUS" 0 "unix: first instance stops cleanly"
	[ -e "$sock" ]
	is $? 1 "unix: socket removed at stop"
	: >"$run/plain"
	stub_unix "$run" "$run/plain" "$run/c.log"
	wait_exit "$PID" 10
	is "$MXW_STOP_STATUS" 1 "unix: a path that is not a socket is refused"
	[ -f "$run/plain" ]
	is $? 0 "unix: ... and left alone"
}

# ---- part 3: mxwarden ----

part3() {
	local run=$MXW_RUN/p3
	if [ ! -x "$MXW_BIN/mxwarden" ]; then
		skip "mxwarden: Sendmail-style session" "$MXW_BIN/mxwarden not built"
		return
	fi
	mkdir -p "$run"
	start_dns "$run" || { not_ok "mxwarden: test DNS starts"; return; }
	start_mxwarden "$run" || { not_ok "mxwarden: starts" \
		"$(tail -20 "$run/mxwarden.log")"; return; }
	ok "mxwarden: starts"
	run_lua mxwarden "$MXW_MILTER_SPEC" mxwarden.lua
	stop_pid "$MXW_PID" 20
	is "$MXW_STOP_STATUS" 0 "mxwarden: SIGTERM: clean exit"
	unlike "$(cat "$run/mxwarden.log")" 'Sanitizer|runtime error' \
		"mxwarden: no sanitizer report"
}

[ -x "$MXW_BIN/tests/tools/milter_stub" ] || {
	not_ok "tests/tools/milter_stub built" "make $MXW_BUILD/tests/tools/milter_stub"
	done_testing; }
part1
part1_drain
part2
part3
done_testing
