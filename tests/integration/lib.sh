# tests/integration/lib.sh - shared helpers for the integration suites.
#
# Source it from a bash suite:   . "$(dirname "$0")/lib.sh"
#
# TAP (plan-less; done_testing prints the plan):
#   ok NAME | not_ok NAME [DIAG...] | skip NAME [REASON]
#   is ACTUAL EXPECTED NAME | like ACTUAL REGEX NAME | unlike ACTUAL REGEX NAME
#   run_ok NAME CMD...          ok when CMD exits 0
#   skip_all REASON             one skipped test, then exit 0
#   done_testing                "1..N"; exits 1 if anything failed
# Run directory and clean-up:
#   mxw_rundir                  make $MXW_RUN (mktemp -d), set the EXIT trap
#   mxw_on_exit CMD             run CMD (eval) at exit, last registered first
#   mxw_track_pid PID NAME      stop PID (TERM, then KILL) at exit
#   stop_pid PID [SECONDS]      TERM, wait (bounded), KILL; prints exit status
# Servers (each on a free loopback port, stopped at exit):
#   free_port                   a TCP port free on 127.0.0.1
#   wait_port PORT [SECONDS]    until something accepts on 127.0.0.1:PORT
#   start_dns RUNDIR            tests/dns/dnsenv; sources RUNDIR/dns.env
#   start_mxwarden RUNDIR [LINE...]   config + daemon; sets MXW_PID,
#                               MXW_MILTER (Postfix form), MXW_MILTER_SPEC
#   start_milter_stub RUNDIR    the front end over a scripted engine
#                               (tests/tools/milter_stub); MXW_STUB_TRACE
#   start_sink RUNDIR           smtp-sink; SINK_PORT, SINK_DIR (SINK_MAX_CONN:
#                               its simultaneous sessions, default 256)
#   start_postfix RUNDIR MILTER private Postfix; SMTP_PORT, PF_QUEUE
#   pf_diag                     its state, for a failure's diagnostics
# Mail:
#   send_mail FROM_IP HELO MAILFROM RCPT FILE   prints the final reply line
#   wait_delivered N [SECONDS]  until SINK_DIR holds N messages
#   delivered_file N            path of the N-th captured message (1-based)
#   header_of FILE NAME [N]     unfolded value of the N-th (1) header NAME
#   header_count FILE NAME      how many NAME headers FILE has
#   postfix_hold_count          messages in the hold (quarantine) queue
#
# Binaries come from $MXW_BUILD (default build) under $MXW_TOP; the
# shared material is "$MXW_TOP/../shared". Every wait is bounded.

MXW_TOP=${MXW_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MXW_BUILD=${MXW_BUILD:-build}
case $MXW_BUILD in
/*) MXW_BIN=$MXW_BUILD ;;
*)  MXW_BIN=$MXW_TOP/$MXW_BUILD ;;
esac
export MXW_TOP MXW_BUILD

_tap_n=0
_tap_failed=0
_mxw_exit_cmds=()

# ---- TAP ----

ok() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n - $1"
}

not_ok() {
	local name=$1
	shift
	_tap_n=$((_tap_n + 1))
	_tap_failed=$((_tap_failed + 1))
	echo "not ok $_tap_n - $name"
	local d
	for d in "$@"; do
		printf '%s\n' "$d" | sed 's/^/#   /'
	done
}

skip() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n - $1 # SKIP ${2:-$1}"
}

is() {
	if [ "$1" == "$2" ]; then
		ok "$3"
	else
		not_ok "$3" "got:      '$1'" "expected: '$2'"
	fi
}

like() {
	if [[ $1 =~ $2 ]]; then
		ok "$3"
	else
		not_ok "$3" "got:      '$1'" "expected to match: /$2/"
	fi
}

unlike() {
	if [[ $1 =~ $2 ]]; then
		not_ok "$3" "got:      '$1'" "expected not to match: /$2/"
	else
		ok "$3"
	fi
}

run_ok() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		not_ok "$name" "command failed: $*" "$out"
	fi
}

skip_all() {
	skip "${MXW_SUITE:-suite}" "$1"
	done_testing
}

# mxw_require WHY TOOL... - skip the whole suite, saying why, unless it
# runs as root (WHY: what root is needed for), every TOOL is installed
# (a name looked up with /usr/sbin on the PATH, or an absolute path) and
# mxwarden is built.
mxw_require() {
	local why=$1 t
	shift
	[ "$(id -u)" = 0 ] || skip_all "needs root $why"
	for t in "$@"; do
		PATH=$PATH:/usr/sbin command -v "$t" >/dev/null ||
			skip_all "$t not installed (contrib/install-deps.sh test)"
	done
	[ -x "$MXW_BIN/mxwarden" ] || skip_all "$MXW_BIN/mxwarden not built"
}

done_testing() {
	echo "1..$_tap_n"
	if [ "$_tap_failed" -gt 0 ]; then
		echo "# $_tap_failed of $_tap_n failed"
		exit 1
	fi
	exit 0
}

# diag - a TAP comment (shown in the log, ignored by the counter).
diag() {
	printf '%s\n' "$@" | sed 's/^/# /'
}

# ---- run directory and clean-up ----

mxw_on_exit() {
	_mxw_exit_cmds+=("$1")
}

_mxw_cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	for ((i = ${#_mxw_exit_cmds[@]} - 1; i >= 0; i--)); do
		eval "${_mxw_exit_cmds[$i]}" >/dev/null 2>&1 || true
	done
	for i in "$MXW_PORT_DIR"/*/"$$"; do
		[ -e "$i" ] && rm -f "$i" && rmdir "${i%/*}" 2>/dev/null
	done
	if [ -n "${MXW_RUN:-}" ] && [ -d "$MXW_RUN" ]; then
		if [ -n "${MXW_KEEP:-}" ]; then
			echo "# kept run directory $MXW_RUN" >&2
		else
			rm -rf "$MXW_RUN"
		fi
	fi
	exit $rc
}

mxw_rundir() {
	MXW_RUN=$(mktemp -d "${TMPDIR:-/tmp}/mxw-it.XXXXXX") || {
		echo "Bail out! mktemp failed"; exit 1; }
	# Postfix daemons and smtp-sink (not root) must reach into it.
	chmod 755 "$MXW_RUN"
	export MXW_RUN
	trap _mxw_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# stop_pid PID [SECONDS [START]] - SIGTERM, wait up to SECONDS (10), then
# SIGKILL. With START (from _mxw_pid_start), only the process that
# started then: a PID now used by another process is left alone. Sets
# MXW_STOP_STATUS to the exit status (PID must be a child of this shell:
# call it directly, not in $(...)) and MXW_STOP_SECS to the time.
stop_pid() {
	local pid=$1 limit=${2:-10} start=${3:-} i t0=$SECONDS
	MXW_STOP_STATUS=
	if [ -n "$start" ] && [ "$(_mxw_pid_start "$pid")" != "$start" ]; then
		MXW_STOP_SECS=0
		return 0	# ours has ended; the PID is not ours any more
	fi
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < limit * 10; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null
			echo "# $pid did not stop in ${limit}s: killed"
		fi
	fi
	wait "$pid" 2>/dev/null
	MXW_STOP_STATUS=$?
	MXW_STOP_SECS=$((SECONDS - t0))
}

mxw_track_pid() {
	mxw_on_exit "stop_pid $1 10 $(_mxw_pid_start "$1" || echo gone)"
}

# _mxw_pid_start PID - when process PID started (clock ticks after boot,
# /proc/PID/stat field 22); fails when there is no such process. With
# PIDs reused (pid_max can be 32768, and a full run starts far more
# processes), a PID alone may name another suite's server by the time
# this suite exits.
_mxw_pid_start() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }	# after "PID (comm) ": field 3 on
	set -- $st
	echo "${20}"
}

# ---- ports ----

_mxw_python() {
	local p
	for p in /usr/bin/python3 python3; do
		command -v "$p" >/dev/null 2>&1 && { echo "$p"; return 0; }
	done
	return 1
}

# Ports handed out are also reserved, across the suites that run at once,
# as directories in MXW_PORT_DIR holding a file named after the suite's
# PID: a port that binds now may still be taken by another suite's server
# before this one's binds it, and a suite would then talk to the other's
# server. A suite removes its own reservations at exit; ones left by a
# killed suite go after a day.
MXW_PORT_DIR=${MXW_PORT_DIR:-${TMPDIR:-/tmp}/mxw-ports}

# free_port - a random port in 20000-32000 that binds on 127.0.0.1 now
# (below the kernel's ephemeral range, so outgoing connections do not
# take it meanwhile) and that no suite holds.
free_port() {
	local port
	mkdir -p "$MXW_PORT_DIR" 2>/dev/null
	find "$MXW_PORT_DIR" -mindepth 1 -maxdepth 1 -mmin +1440 \
		-exec rm -rf {} + 2>/dev/null
	port=$("$(_mxw_python)" - "$MXW_PORT_DIR" "$$" <<'EOF'
import os, random, socket, sys
for _ in range(200):
    p = random.randrange(20000, 32000)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    d = os.path.join(sys.argv[1], str(p))
    try:
        os.mkdir(d)
        open(os.path.join(d, sys.argv[2]), "w").close()
    except FileExistsError:
        continue
    except OSError:
        pass  # no reservation directory: the bind test alone
    print(p)
    break
EOF
) || return 1
	[ -n "$port" ] || return 1
	echo "$port"
}

wait_port() {
	local port=$1 limit=${2:-15} i
	for ((i = 0; i < limit * 10; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# ---- DNS ----

start_dns() {
	local run=$1 env=$1/dns.env
	local dnsenv=$MXW_TOP/tests/dns/dnsenv
	[ -x "$dnsenv" ] || [ -f "$dnsenv" ] || {
		echo "start_dns: $dnsenv missing" >&2; return 1; }
	mxw_on_exit "bash '$dnsenv' stop '$run'"
	bash "$dnsenv" start "$run" >"$run/dnsenv.log" 2>&1 || {
		echo "start_dns: dnsenv start failed:" >&2
		tail -20 "$run/dnsenv.log" >&2; return 1; }
	[ -f "$env" ] || { echo "start_dns: no $env" >&2; return 1; }
	# shellcheck disable=SC1090
	. "$env"
	export DNS_SERVER DNS_UNBOUND_CONF
}

# ---- the milter: mxwarden or the stub ----

# _mxw_wait_milter PID PORT LOG NAME - until PORT accepts; fails (and
# shows the log) when PID dies or 20 s pass.
_mxw_wait_milter() {
	local pid=$1 port=$2 log=$3 name=$4 i
	for ((i = 0; i < 200; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name exited at start-up:" >&2
			tail -30 "$log" >&2
			return 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "$name does not accept on port $port after 20 s" >&2
	tail -30 "$log" >&2
	return 1
}

# mxw_write_conf RUNDIR PORT [LINE...] - RUNDIR/mxwarden.conf
mxw_write_conf() {
	local run=$1 port=$2
	shift 2
	{
		echo "# written by tests/integration/lib.sh"
		echo "hostname = mx.mxw.test"
		echo "authserv_id = mx.mxw.test"
		echo "milter_socket = inet:$port@127.0.0.1"
		# The test DNS: its unbound.conf forwards to nsd and lifts
		# unbound's own answers for test. (dns_server would not).
		if [ -f "$run/unbound.conf" ]; then
			echo "dns_unbound_conf = $run/unbound.conf"
		elif [ -n "${DNS_SERVER:-}" ]; then
			echo "dns_server = $DNS_SERVER"
		fi
		echo "dns_timeout = 2s"
		echo "db_path = $run/mxwarden.db"
		echo "rules_file = $MXW_TOP/rules/default.rules"
		[ -f "$run/local.rules" ] &&
			echo "local_rules_file = $run/local.rules"
		echo "on_dns_error = tempfail"
		echo "log_level = debug"
		local l
		for l in "$@"; do
			echo "$l"
		done
	} >"$run/mxwarden.conf"
}

# start_mxwarden RUNDIR [LINE...] - extra LINEs are appended to the
# config (a later key overrides an earlier one only if the config
# parser allows it: prefer keys not written above).
start_mxwarden() {
	local run=$1 port
	shift
	[ -x "$MXW_BIN/mxwarden" ] || {
		echo "start_mxwarden: $MXW_BIN/mxwarden not built" >&2; return 1; }
	port=$(free_port) || return 1
	[ -f "$run/local.rules" ] || : >"$run/local.rules"
	mxw_write_conf "$run" "$port" "$@"
	"$MXW_BIN/mxwarden" -f -c "$run/mxwarden.conf" \
		>>"$run/mxwarden.log" 2>&1 &
	MXW_PID=$!
	mxw_track_pid "$MXW_PID"
	MXW_MILTER_PORT=$port
	MXW_MILTER_SPEC=inet:$port@127.0.0.1
	MXW_MILTER=inet:127.0.0.1:$port
	_mxw_wait_milter "$MXW_PID" "$port" "$run/mxwarden.log" mxwarden
}

start_milter_stub() {
	local run=$1 port
	[ -x "$MXW_BIN/tests/tools/milter_stub" ] || {
		echo "start_milter_stub: $MXW_BIN/tests/tools/milter_stub not built" >&2
		return 1; }
	port=$(free_port) || return 1
	MXW_STUB_TRACE=$run/stub.trace
	: >"$MXW_STUB_TRACE"
	"$MXW_BIN/tests/tools/milter_stub" -p "inet:$port@127.0.0.1" \
		-t "$MXW_STUB_TRACE" >>"$run/stub.log" 2>&1 &
	MXW_PID=$!
	mxw_track_pid "$MXW_PID"
	MXW_MILTER_PORT=$port
	MXW_MILTER_SPEC=inet:$port@127.0.0.1
	MXW_MILTER=inet:127.0.0.1:$port
	_mxw_wait_milter "$MXW_PID" "$port" "$run/stub.log" milter_stub
}

# ---- capture server ----

start_sink() {
	local run=$1
	command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ] || {
		echo "start_sink: smtp-sink missing (package postfix)" >&2; return 1; }
	SINK_PORT=$(free_port) || return 1
	SINK_DIR=$run/sink
	mkdir -p "$SINK_DIR"
	local user=()
	if [ "$(id -u)" = 0 ]; then
		chown postfix "$SINK_DIR"
		user=(-u postfix)
	fi
	# One file per message; the name sorts by arrival (seconds, then
	# smtp-sink's random suffix: tests wait for each message in turn).
	# SINK_MAX_CONN: simultaneous sessions (smtp-sink's -m, default 256).
	PATH=$PATH:/usr/sbin smtp-sink "${user[@]}" -m "${SINK_MAX_CONN:-256}" \
		-d "$SINK_DIR/%Y%m%d%H%M%S." \
		"127.0.0.1:$SINK_PORT" 50 >"$run/sink.log" 2>&1 &
	SINK_PID=$!
	mxw_track_pid "$SINK_PID"
	wait_port "$SINK_PORT" 10 || {
		echo "start_sink: smtp-sink does not listen" >&2
		cat "$run/sink.log" >&2; return 1; }
	export SINK_PORT SINK_DIR
}

# ---- Postfix ----

_pf_subst() {
	sed -e "s|@RUN@|$MXW_PF_RUN|g" -e "s|@SINK_PORT@|$SINK_PORT|g" \
	    -e "s|@SMTP_PORT@|$SMTP_PORT|g" -e "s|@MILTER@|$2|g" \
	    -e "s|@RELAY_DOMAINS@|${MXW_RELAY_DOMAINS:-local.test}|g" "$1"
}

# start_postfix RUNDIR MILTER - MILTER is Postfix's form
# (inet:127.0.0.1:PORT, unix:/path) or "" for none. Needs start_sink
# first. MXW_RELAY_DOMAINS (default local.test) are accepted from any
# 127.0.0.x client; PF_EXTRA_MAIN lines are appended to main.cf,
# PF_EXTRA_MASTER lines to master.cf.
start_postfix() {
	local run=$1 milter=$2 tmpl=$MXW_TOP/tests/integration/postfix
	[ "$(id -u)" = 0 ] || { echo "start_postfix: needs root" >&2; return 1; }
	command -v postfix >/dev/null 2>&1 || [ -x /usr/sbin/postfix ] || {
		echo "start_postfix: postfix missing" >&2; return 1; }
	[ -n "${SINK_PORT:-}" ] || { echo "start_postfix: start_sink first" >&2; return 1; }
	MXW_PF_RUN=$run
	SMTP_PORT=$(free_port) || return 1
	PF_CONF=$run/postfix/etc
	PF_QUEUE=$run/postfix/queue
	mkdir -p "$PF_CONF" "$PF_QUEUE" "$run/postfix/data"
	chown postfix "$run/postfix/data"
	_pf_subst "$tmpl/main.cf.in" "$milter" >"$PF_CONF/main.cf"
	[ -n "${PF_EXTRA_MAIN:-}" ] && printf '%s\n' "$PF_EXTRA_MAIN" >>"$PF_CONF/main.cf"
	_pf_subst "$tmpl/master.cf.in" "$milter" >"$PF_CONF/master.cf"
	[ -n "${PF_EXTRA_MASTER:-}" ] && printf '%s\n' "$PF_EXTRA_MASTER" >>"$PF_CONF/master.cf"
	mxw_on_exit "stop_postfix '$PF_QUEUE'"
	_pf_start "$run" || return 1
	# A Postfix whose log stays silent has been seen in full runs (many
	# instances at once): postlogd alive but writing nothing, so every
	# process blocks at its next log line (a unix datagram queue holds
	# 10) and smtpd stops greeting. The master's "daemon started" must
	# reach the log; if it does not, the instance is started once more.
	if ! _pf_log_ok "$run"; then
		echo "# start_postfix: the log stays silent; starting Postfix again:" >&2
		pf_diag | sed 's/^/#   /' >&2
		stop_postfix "$PF_QUEUE"
		_pf_start "$run" || return 1
		_pf_log_ok "$run" || {
			echo "start_postfix: the log stays silent again" >&2
			pf_diag >&2; return 1; }
	fi
	wait_port "$SMTP_PORT" 20 || {
		echo "start_postfix: smtpd does not listen on $SMTP_PORT" >&2
		tail -20 "$run/postfix.log" >&2; return 1; }
	# master listens before any smtpd runs; on a loaded machine the first
	# smtpd can take a while to start. Wait (bounded) for a 220 banner so
	# the first test does not spend its own timeout on that.
	wait_banner "$SMTP_PORT" 60 || {
		echo "start_postfix: no 220 banner on $SMTP_PORT" >&2
		tail -20 "$run/postfix.log" >&2; return 1; }
	export SMTP_PORT PF_QUEUE PF_CONF
	# The banner must have come from this instance, not from another
	# server that holds the port.
	if command -v ss >/dev/null 2>&1 && [ -f "$PF_QUEUE/pid/master.pid" ] &&
	    ! ss -Hltnp "sport = :$SMTP_PORT" 2>/dev/null |
	    grep -q "pid=$(tr -d ' \n' <"$PF_QUEUE/pid/master.pid"),"; then
		echo "start_postfix: port $SMTP_PORT is not held by this" \
			"instance's master" >&2
		pf_diag >&2
		return 1
	fi
}

# pf_diag - what the Postfix instance started last looks like: its start
# output, master, listener and log (for a failure's diagnostics).
pf_diag() {
	local pid
	echo "postfix start said: $(grep -v 'overriding earlier entry' \
		"$MXW_PF_RUN/postfix-start.log" 2>/dev/null)"
	pid=$(tr -d ' \n' <"$PF_QUEUE/pid/master.pid" 2>/dev/null)
	echo "master pid ${pid:-none}: $(ps -o stat=,etime=,args= -p "${pid:-0}" 2>/dev/null ||
		echo not running)"
	command -v ss >/dev/null 2>&1 &&
		echo "listeners on $SMTP_PORT: $(ss -Hltnp "sport = :$SMTP_PORT" 2>/dev/null)" &&
		echo "connections to $SMTP_PORT: $(ss -Htn "dport = :$SMTP_PORT" 2>/dev/null | wc -l)"
	echo "its processes (pid, state, where each sleeps, command):"
	ps -o pid=,stat=,wchan:24=,args= --ppid "${pid:-0}" 2>/dev/null
	echo "the end of its log:"
	tail -15 "$MXW_PF_RUN/postfix.log" 2>/dev/null
}

# _pf_start RUNDIR - postfix start, with an empty log
_pf_start() {
	: >"$1/postfix.log"
	PATH=$PATH:/usr/sbin timeout 60 postfix -c "$PF_CONF" start >"$1/postfix-start.log" 2>&1 || {
		echo "start_postfix: postfix start failed:" >&2
		cat "$1/postfix-start.log" >&2; return 1; }
}

# _pf_log_ok RUNDIR - the master's start reached the log (10 s at most)
_pf_log_ok() {
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q 'master.*daemon started' "$1/postfix.log" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# stop_postfix [QUEUE_DIR] - SIGTERM to the master (by its pid file),
# bounded wait; default: the instance started last.
stop_postfix() {
	local pidf=${1:-${PF_QUEUE:-/nonexistent}}/pid/master.pid pid i
	[ -f "$pidf" ] || return 0
	pid=$(tr -d ' \n' <"$pidf")
	[ -n "$pid" ] || return 0
	# A master that died leaves its pid file: is the PID still a master?
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'postfix/sbin/master' ||
		return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
}

postfix_hold_count() {
	find "$PF_QUEUE/hold" -type f 2>/dev/null | wc -l
}

# postfix_queue_count - messages anywhere in the queue (not yet sent)
postfix_queue_count() {
	find "$PF_QUEUE/incoming" "$PF_QUEUE/active" "$PF_QUEUE/deferred" \
		"$PF_QUEUE/hold" -type f 2>/dev/null | wc -l
}

# wait_banner PORT [SECONDS] - until an SMTP server on 127.0.0.1:PORT
# greets with 220 (each try bounded to 10 s).
wait_banner() {
	local port=$1 end=$((SECONDS + ${2:-30})) got
	while [ $SECONDS -lt $end ]; do
		got=$(timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port &&
			head -c 3 <&3 && printf 'QUIT\r\n' >&3" 2>/dev/null)
		[ "$got" = 220 ] && return 0
		sleep 0.5
	done
	return 1
}

# ---- mail ----

# send_mail FROM_IP HELO MAILFROM RCPT FILE - one SMTP transaction with
# swaks to Postfix; prints the server's last reply before QUIT (e.g.
# "250 2.0.0 Ok: queued as 3F1..." or "550 5.1.8 ..."). The full dialogue
# goes to $MXW_RUN/swaks.log. RCPT may be a comma-separated list.
send_mail() {
	local ip=$1 helo=$2 from=$3 rcpt=$4 file=$5 out
	out=$(timeout 60 swaks --server "127.0.0.1:$SMTP_PORT" \
		--local-interface "$ip" --ehlo "$helo" --from "$from" \
		--to "$rcpt" --data "@$file" --timeout 50 --suppress-data 2>&1)
	printf '%s\n' "== $ip $helo $from $rcpt" "$out" >>"$MXW_RUN/swaks.log"
	# Server lines: "<-" / "<~" (ok), "<**" (error). Drop QUIT's 221.
	printf '%s\n' "$out" | awk '
		/^ *<(-|~|\*\*|~\*\*) / {
			sub(/^ *<(-|~|\*\*|~\*\*) +/, ""); line = $0
			if (line ~ /^221[ -]/) next
			last = line
		}
		END { print last }'
}

# mail_file NAME [HEADER...] - write $MXW_RUN/NAME.eml: the given header
# lines, a Date and Message-ID unless given, a short body.
mail_file() {
	local f=$MXW_RUN/$1.eml h
	shift
	{
		for h in "$@"; do
			printf '%s\r\n' "$h"
		done
		printf '%s\r\n' "$*" | grep -qi 'date:' ||
			printf 'Date: %s\r\n' "$(date -R)"
		printf '%s\r\n' "$*" | grep -qi 'message-id:' ||
			printf 'Message-ID: <%s.%s@mxw.test>\r\n' "$RANDOM$RANDOM" "$$"
		printf '\r\nTest body line.\r\n'
	} >"$f"
	echo "$f"
}

delivered_count() {
	find "$SINK_DIR" -type f 2>/dev/null | wc -l
}

wait_delivered() {
	local n=$1 limit=${2:-30} i
	for ((i = 0; i < limit * 10; i++)); do
		[ "$(delivered_count)" -ge "$n" ] && return 0
		sleep 0.1
	done
	return 1
}

# delivered_file N - the N-th message captured (in arrival order).
delivered_file() {
	find "$SINK_DIR" -type f -printf '%T@ %p\n' 2>/dev/null | sort -n |
		sed -n "${1}p" | cut -d' ' -f2-
}

# header_of FILE NAME [N] - the N-th (default 1) header NAME of FILE,
# unfolded (CRLF before white space removed), trimmed. Empty if none.
header_of() {
	awk -v want="$2" -v nth="${3:-1}" '
		BEGIN { want = tolower(want) }
		{ sub(/\r$/, "") }
		/^$/ { flush(); exit }
		/^[ \t]/ { if (cur != "") val = val $0; next }
		{ flush(); i = index($0, ":")
		  if (i == 0) next
		  cur = tolower(substr($0, 1, i - 1)); val = substr($0, i + 1) }
		END { flush() }
		function flush() {
			if (cur == want && ++seen == nth && !done) {
				gsub(/^[ \t]+|[ \t]+$/, "", val); print val; done = 1
			}
			cur = ""
		}' "$1"
}

header_count() {
	awk -v want="$2" '
		BEGIN { want = tolower(want); n = 0 }
		{ sub(/\r$/, "") }
		/^$/ { exit }
		/^[ \t]/ { next }
		{ i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == want) n++ }
		END { print n }' "$1"
}
