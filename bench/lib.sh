# bench/lib.sh - the pieces of the benchmark harness; sourced by bench/run
# after tests/integration/lib.sh (whose server starters, clean-up trap
# and bounded waits it reuses). Nothing here runs on its own.
#
# Conventions: every figure is printed with `out` (stdout and the
# results file $OUT); a failed measurement calls `bench_fail`, which
# marks the run failed (exit status) but lets the other sections run.

BENCH_FROM=a@dmarc.test
BENCH_RCPT=u@local.test
BENCH_HELO=localhost.mxw.test

out() {
	printf '%s\n' "$@" | tee -a "$OUT"
}

bench_fail() {
	BENCH_FAILED=1
	out "FAIL: $*"
}

bench_now_ns() {
	date +%s%N
}

# bench_stats - read numbers (one a line); print "median min max n".
bench_stats() {
	sort -g | awk '
		{ v[n++] = $1 }
		END {
			if (n == 0) { print "- - - 0"; exit }
			m = (n % 2) ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
			printf "%.4g %.4g %.4g %d\n", m, v[0], v[n - 1], n
		}'
}

# bench_row LABEL UNIT NUMBERS... - one table row: median [min..max] (n)
bench_row() {
	local label=$1 unit=$2 s
	shift 2
	s=$(printf '%s\n' "$@" | bench_stats)
	set -- $s
	out "$(printf '  %-34s %10s %-8s [%s .. %s]  n=%s' "$label" "$1" "$unit" "$2" "$3" "$4")"
}

bench_preflight() {
	local t
	if [ "$(id -u)" != 0 ]; then
		echo "bench: needs root (it runs a private Postfix instance)" >&2
		return 1
	fi
	for t in postfix smtp-source smtp-sink nsd; do
		PATH=$PATH:/usr/sbin command -v "$t" >/dev/null 2>&1 || {
			echo "bench: $t not installed (contrib/install-deps.sh)" >&2
			return 1; }
	done
	[ -x "$MXW_BIN/mxwarden" ] || {
		echo "bench: $MXW_BIN/mxwarden not built (make all)" >&2
		return 1; }
	return 0
}

# ---- servers ----

# bench_sink - smtp-sink without message files (the bench counts
# deliveries in Postfix's log); sets SINK_PORT.
bench_sink() {
	local user=()
	SINK_PORT=$(free_port) || return 1
	[ "$(id -u)" = 0 ] && user=(-u postfix)
	PATH=$PATH:/usr/sbin smtp-sink "${user[@]}" "127.0.0.1:$SINK_PORT" 256 \
		>"$RUN/sink.log" 2>&1 &
	mxw_track_pid $!
	wait_port "$SINK_PORT" 10 || {
		echo "bench: smtp-sink does not listen" >&2; return 1; }
	export SINK_PORT
}

# bench_relay - a private haproxy in TCP mode in front of the sink: a
# relay with no SMTP logic at all, the reference for what terminating
# TCP on both sides costs on this machine (section 5). Sets RELAY_PORT;
# leaves it empty, with RELAY_WHY saying why, when haproxy is missing
# or does not start.
bench_relay() {
	local ha cfg=$RUN/haproxy.cfg pid
	RELAY_PORT= RELAY_WHY=
	ha=$(PATH=$PATH:/usr/sbin command -v haproxy) || {
		RELAY_WHY="haproxy not installed (contrib/install-deps.sh bench)"
		return 1; }
	RELAY_PORT=$(free_port) || { RELAY_PORT= RELAY_WHY="no free port"; return 1; }
	cat >"$cfg" <<EOF
global
	maxconn 4000
	user nobody
defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend relay
	bind 127.0.0.1:$RELAY_PORT
	default_backend sink
backend sink
	server sink 127.0.0.1:$SINK_PORT
EOF
	"$ha" -db -f "$cfg" >>"$RUN/haproxy.log" 2>&1 &
	pid=$!
	mxw_track_pid "$pid"
	if ! wait_port "$RELAY_PORT" 10 || ! kill -0 "$pid" 2>/dev/null; then
		RELAY_PORT= RELAY_WHY="haproxy did not start: $(tail -1 "$RUN/haproxy.log")"
		return 1
	fi
}

# bench_mxwarden DIR SPEC - mxwarden listening on SPEC (inet:PORT@ADDR
# or unix:PATH), config in DIR, log level info; sets BM_PID.
bench_mxwarden() {
	local dir=$1 spec=$2 i path
	mkdir -p "$dir"
	ln -sf "$RUN/unbound.conf" "$dir/unbound.conf"
	: >"$dir/local.rules"
	mxw_write_conf "$dir" 0
	"$BENCH_MXW" -f -c "$dir/mxwarden.conf" -o "milter_socket=$spec" \
		-o log_level=info >>"$dir/mxwarden.log" 2>&1 &
	BM_PID=$!
	mxw_track_pid "$BM_PID"
	case $spec in
	inet:*)
		i=${spec#inet:}
		_mxw_wait_milter "$BM_PID" "${i%@*}" "$dir/mxwarden.log" mxwarden
		return
		;;
	esac
	path=${spec#unix:}
	for ((i = 0; i < 200; i++)); do
		kill -0 "$BM_PID" 2>/dev/null || break
		if [ -S "$path" ]; then
			# smtpd runs as postfix: it must be able to connect.
			chmod 666 "$path"
			return 0
		fi
		sleep 0.1
	done
	echo "bench: mxwarden on $spec did not start" >&2
	tail -20 "$dir/mxwarden.log" >&2
	return 1
}

# bench_postfix NAME MILTER - a private Postfix in $RUN/NAME; sets
# PORT_NAME, QUEUE_NAME, LOG_NAME.
bench_postfix() {
	local name=$1
	mkdir -p "$RUN/$name"
	start_postfix "$RUN/$name" "$2" || return 1
	printf -v "PORT_$name" '%s' "$SMTP_PORT"
	printf -v "QUEUE_$name" '%s' "$PF_QUEUE"
	printf -v "LOG_$name" '%s' "$RUN/$name/postfix.log"
}

# bench_corpus - DKIM-signed messages (LF line ends: smtp-source -F adds
# the CR) in $RUN/corpus/NAME.eml, with NAME.from (the envelope sender).
bench_corpus() {
	local c=$RUN/corpus sign=$MXW_TOP/tests/dkim/sign body i
	mkdir -p "$c"
	body=$(for ((i = 0; i < 20; i++)); do
		echo "Line $i of a plain text body, long enough to look like mail."
	done)
	bench_msg() {	# NAME FROM_DOMAIN SIGN_ALG SIGN_DOMAIN SELECTOR [BODY_REPEAT]
		local n=$1 d=$2 alg=$3 sd=$4 sel=$5 rep=${6:-1} j
		{
			echo "From: Bench <a@$d>"
			echo "To: <$BENCH_RCPT>"
			echo "Subject: bench $n"
			echo "Date: $(date -R)"
			echo "Message-ID: <bench-$n.$$@$d>"
			echo "MIME-Version: 1.0"
			echo "Content-Type: text/plain; charset=us-ascii"
			echo
			for ((j = 0; j < rep; j++)); do
				echo "$body"
			done
		} >"$c/$n.raw"
		if [ "$alg" = none ]; then
			cp "$c/$n.raw" "$c/$n.eml"
		else
			sh "$sign" "$RUN" "$alg" "$sd" "$sel" <"$c/$n.raw" \
				>"$c/$n.eml" || return 1
		fi
		echo "a@$d" >"$c/$n.from"
	}
	bench_msg rsa dmarc.test rsa-sha256 dmarc.test rsa &&
	bench_msg ed25519 dmarc.test ed25519-sha256 dmarc.test ed &&
	bench_msg unsigned none.dmarc.test none - - &&
	bench_msg reject-aligned reject.dmarc.test rsa-sha256 reject.dmarc.test rsa &&
	bench_msg third-party dmarc.test rsa-sha256 dkim.test rsa &&
	bench_msg revoked-key dmarc.test rsa-sha256 dkim.test revoked &&
	bench_msg big-100k dmarc.test rsa-sha256 dmarc.test rsa 80
}

bench_setup() {
	local port
	echo "# setting up in $RUN (keys, DNS, corpus, sink, mxwarden x2, Postfix x3)"
	# A private copy: the tree's binary may be rebuilt during the run.
	BENCH_MXW=$RUN/bin/mxwarden
	mkdir -p "$RUN/bin"
	cp "$MXW_BIN/mxwarden" "$BENCH_MXW" || return 1
	sh "$MXW_TOP/tests/dkim/keys" "$RUN" >"$RUN/keys.log" 2>&1 || {
		echo "bench: tests/dkim/keys failed" >&2; cat "$RUN/keys.log" >&2
		return 1; }
	start_dns "$RUN" || return 1
	bench_corpus || { echo "bench: signing the corpus failed" >&2; return 1; }
	bench_sink || return 1
	port=$(free_port) || return 1
	bench_mxwarden "$RUN/mi" "inet:$port@127.0.0.1" || return 1
	MXW_INET_PID=$BM_PID
	MXW_INET=inet:127.0.0.1:$port
	bench_mxwarden "$RUN/mu" "unix:$RUN/mu/milter.sock" || return 1
	MXW_UNIX_PID=$BM_PID
	bench_postfix none "" || return 1
	bench_postfix inet "$MXW_INET" || return 1
	bench_postfix unix "unix:$RUN/mu/milter.sock" || return 1
	return 0
}

# ---- measurement helpers ----

# bench_queue_left QUEUE - messages still in QUEUE (not yet delivered)
bench_queue_left() {
	find "$1/maildrop" "$1/incoming" "$1/active" "$1/deferred" \
		-type f 2>/dev/null | wc -l
}

# bench_drain QUEUE [SECONDS] - wait until QUEUE is empty (bounded)
bench_drain() {
	local q=$1 limit=${2:-60} i
	for ((i = 0; i < limit * 10; i++)); do
		[ "$(bench_queue_left "$q")" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# bench_source PORT MSGS SESSIONS LOG - smtp-source, one message per
# connection; prints the elapsed seconds; fails on any SMTP error.
bench_source() {
	local port=$1 n=$2 s=$3 log=$4 t0 t1 rc
	t0=$(bench_now_ns)
	timeout "$BENCH_SOURCE_TIMEOUT" /usr/sbin/smtp-source -s "$s" -m "$n" \
		-f "$BENCH_FROM" -t "$BENCH_RCPT" -M "$BENCH_HELO" \
		-F "$RUN/corpus/rsa.eml" "127.0.0.1:$port" >>"$log" 2>&1
	rc=$?
	t1=$(bench_now_ns)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", (b - a) / 1e9 }'
	return $rc
}

# bench_pf_errors LOG - lines of Postfix's log showing a milter problem
# or a rejected/deferred message
bench_pf_errors() {
	grep -cE 'milter-reject|milter-discard|warning: .*milter|status=(deferred|bounced)|reject:' \
		"$1" 2>/dev/null
}

# bench_cpu_ticks PID - user + system CPU time of PID so far, in clock
# ticks (getconf CLK_TCK a second)
bench_cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null
}

bench_rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

bench_threads() {
	awk '/^Threads:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

bench_fds() {
	find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}
