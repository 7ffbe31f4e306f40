# bench/sections.sh - the four measurements of the benchmark harness
# (throughput, engine cost, concurrency, rules cost) and the report's header and
# footer; sourced by bench/run after bench/lib.sh. Each section prints
# its table with `out` and calls `bench_fail` when a check fails.

bench_header() {
	local rev
	rev=$(git -C "$MXW_TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)
	git -C "$MXW_TOP" diff --quiet HEAD 2>/dev/null || rev="$rev+changes"
	BENCH_T0=$SECONDS
	out "mxwarden benchmark  $(date -u '+%Y-%m-%d %H:%M:%S UTC')  tree $rev" \
		"host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)," \
		"      run dir on $(df -P "$RUN" | awk 'NR == 2 { print $1 }')" \
		"      (BENCH_TMPFS=$BENCH_TMPFS; 1 puts the Postfix queue on tmpfs)" \
		"binary: $MXW_BIN/mxwarden (copied at start; sha256 $(
			sha256sum "$BENCH_MXW" | cut -c1-12))" \
		"figures: median [min .. max] over n rounds; ratios are per round," \
		"         from rounds run back to back (none, inet, unix, inet, unix, none...)" ""
}

bench_footer() {
	out "" "time: setup $((BENCH_T0 - BENCH_START)) s, measurements $((SECONDS - BENCH_T0)) s; result: $(
		[ "$BENCH_FAILED" = 0 ] && echo ok || echo FAILED)"
}

# ---- 1. throughput ----

# bench_tp_round NAME MSGS - one timed round against Postfix NAME;
# prints msg/s, or fails.
bench_tp_round() {
	local name=$1 n=$2 port queue secs
	port=PORT_$name queue=QUEUE_$name
	bench_drain "${!queue}" 60 || {
		echo "queue of $name does not drain" >&2; return 1; }
	secs=$(bench_source "${!port}" "$n" "$BENCH_SESSIONS" "$RUN/source-$name.log") ||
		return 1
	awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.2f\n", n / s }'
}

bench_throughput() {
	local r name rate i
	local -A rates=()
	local names=(none inet unix)
	out "1. Milter throughput: Postfix <- smtp-source -s $BENCH_SESSIONS," \
		"   $BENCH_MSGS messages per round (one per connection, the rsa" \
		"   signed message of the corpus), $BENCH_ROUNDS rounds per setup"
	for name in "${names[@]}"; do	# warm-up: caches, Postfix processes
		bench_tp_round "$name" 20 >/dev/null ||
			bench_fail "warm-up round against Postfix '$name' failed: $(
				tail -3 "$RUN/source-$name.log")"
	done
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		# Each round starts with the next setup: no setup always
		# runs first or last (cache warmth, load drift).
		for i in 0 1 2; do
			name=${names[(r + i) % 3]}
			if rate=$(bench_tp_round "$name" "$BENCH_MSGS"); then
				rates[$name.$r]=$rate
			else
				bench_fail "round $r against Postfix '$name' failed: $(
					tail -3 "$RUN/source-$name.log")"
			fi
		done
	done
	for name in "${names[@]}"; do
		bench_row "msg/s, Postfix milter=$name" msg/s $(
			for ((r = 1; r <= BENCH_ROUNDS; r++)); do
				echo "${rates[$name.$r]:-}"
			done | grep .)
	done
	bench_tp_ratio
}

# bench_tp_ratio - the per-round ratios and the milter's added latency
# (uses the caller's array `rates`).
bench_tp_ratio() {
	local pair a b r v
	local -a list
	for pair in inet/none unix/none inet/unix; do
		a=${pair%/*} b=${pair#*/} list=()
		for ((r = 1; r <= BENCH_ROUNDS; r++)); do
			[ -n "${rates[$a.$r]:-}" ] && [ -n "${rates[$b.$r]:-}" ] || continue
			list+=("$(awk -v x="${rates[$a.$r]}" -v y="${rates[$b.$r]}" \
				'BEGIN { printf "%.3f\n", x / y }')")
		done
		bench_row "ratio $pair" x "${list[@]}"
		[ "$pair" = inet/unix ] && BENCH_INET_UNIX=$(printf '%s\n' "${list[@]}" |
			bench_stats | cut -d' ' -f1)
	done
	for a in inet unix; do
		list=()
		for ((r = 1; r <= BENCH_ROUNDS; r++)); do
			[ -n "${rates[$a.$r]:-}" ] && [ -n "${rates[none.$r]:-}" ] || continue
			list+=("$(awk -v x="${rates[$a.$r]}" -v y="${rates[none.$r]}" \
				-v s="$BENCH_SESSIONS" \
				'BEGIN { printf "%.3f\n", 1000 * s / x - 1000 * s / y }')")
		done
		bench_row "added ms per message, $a" ms "${list[@]}"
	done
	v=${BENCH_INET_UNIX:-}
	if [ -n "$v" ] && [ "$v" != - ] && awk -v v="$v" 'BEGIN { exit !(v < 0.5) }'; then
		out "   WARNING: inet is much slower than unix (median ratio $v): replies" \
			"   stall on loopback TCP (Nagle + delayed ACK); filter/milter.c"
	fi
	out "   Postfix log problems (milter-reject, milter warnings, deferred):" \
		"   none=$(bench_pf_errors "$LOG_none") inet=$(bench_pf_errors "$LOG_inet") unix=$(
			bench_pf_errors "$LOG_unix")" \
		"$(if [ "$BENCH_TMPFS" = 1 ]; then
			echo "   note: queue on tmpfs: no fsync cost in these figures"
		else
			echo "   note: every figure includes Postfix's queue file fsync (about"
			echo "   0.5-1 ms per message on disk; BENCH_TMPFS=1 removes it)"
		fi)" "   compare within one run only." ""
	for v in none inet unix; do
		[ "$(bench_pf_errors "$RUN/$v/postfix.log")" = 0 ] ||
			bench_fail "Postfix '$v' logged milter problems or rejects"
	done
}

# ---- 2. engine cost ----

# bench_check FILE [VALGRIND...] - one `mxwarden check` of a corpus file
bench_check() {
	local f=$1 from
	shift
	from=$(cat "${f%.eml}.from")
	"$@" "$BENCH_MXW" check -c "$RUN/mi/mxwarden.conf" \
		-o "db_path=$RUN/check.db" -o log_level=err -o dns_timeout=10s \
		--ip 127.0.0.1 --helo "$BENCH_HELO" --from "$from" \
		--rcpt "$BENCH_RCPT" --json "$f"
}

bench_engine() {
	local f name p t0 t1 act
	local -a all one syms
	out "2. Engine cost: mxwarden check (one process per message: start-up," \
		"   config, rules, resolver, checks with the test DNS), $BENCH_CHECK_PASSES passes"
	for f in "$RUN"/corpus/*.eml; do
		name=$(basename "$f" .eml) one=()
		act=$(bench_check "$f" 2>"$RUN/check-$name.err" | bench_check_summary)
		[ -n "$act" ] || bench_fail "check of $name printed no action: $(
			head -3 "$RUN/check-$name.err")"
		case $act in
		*TEMPERROR*) bench_fail "check of $name: DNS errors ($act)" ;;
		esac
		syms+=("$(printf '    %-16s %s' "$name" "$act")")
		act=${act%% *}
		for ((p = 1; p <= BENCH_CHECK_PASSES; p++)); do
			t0=$(bench_now_ns)
			bench_check "$f" >/dev/null 2>&1
			t1=$(bench_now_ns)
			one+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", (b - a) / 1e6 }')")
		done
		all+=("${one[@]}")
		bench_row "$name ($act)" ms "${one[@]}"
	done
	bench_row "all messages" ms "${all[@]}"
	out "   action and symbols of each message:" "${syms[@]}" ""
	bench_callgrind
}

# bench_check_summary - "ACTION SYMBOL,SYMBOL..." from check's JSON
bench_check_summary() {
	/usr/bin/python3 -c '
import json, sys
try:
    j = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
print(j.get("action", "?"), ",".join(s["name"] for s in j.get("symbols", [])))
'
}

# bench_cg_total FILE - the instruction count of a callgrind output
bench_cg_total() {
	awk '/^(summary|totals):/ { print $2; exit }' "$1" 2>/dev/null
}

bench_callgrind() {
	local f=$RUN/corpus/rsa.eml i n1 n2 e1 e2
	if [ "$BENCH_CALLGRIND" != 1 ]; then
		out "   callgrind: skipped (BENCH_CALLGRIND=$BENCH_CALLGRIND)" ""
		return
	fi
	command -v valgrind >/dev/null 2>&1 || {
		out "   callgrind: skipped (valgrind not installed)" ""; return; }
	for i in 1 2; do
		bench_check "$f" valgrind --tool=callgrind \
			--callgrind-out-file="$RUN/cg-full.$i" >/dev/null 2>&1
		bench_check "$f" valgrind --tool=callgrind --toggle-collect=check_run \
			--callgrind-out-file="$RUN/cg-msg.$i" >/dev/null 2>&1
	done
	n1=$(bench_cg_total "$RUN/cg-full.1") n2=$(bench_cg_total "$RUN/cg-full.2")
	e1=$(bench_cg_total "$RUN/cg-msg.1") e2=$(bench_cg_total "$RUN/cg-msg.2")
	if [ -z "$n1" ] || [ -z "$e1" ]; then
		bench_fail "callgrind produced no counts"
		return
	fi
	out "   callgrind, one check of corpus/rsa.eml (instructions, two runs):" \
		"$(printf '  %-34s %14s %14s  diff %s' "whole process" "$n1" "$n2" \
			"$(awk -v a="$n1" -v b="$n2" 'BEGIN { printf "%.2f%%", 100 * (b - a) / a }')")" \
		"$(printf '  %-34s %14s %14s  diff %s' "the message (check_run)" "$e1" "$e2" \
			"$(awk -v a="$e1" -v b="$e2" 'BEGIN { printf "%.2f%%", 100 * (b - a) / a }')")" \
		"$(bench_cg_seed "$RUN/cg-msg.1" "$e1")" \
		"   mxwarden's own functions inside check_run, inclusive:"
	bench_cg_top "$RUN/cg-msg.1" yes ours
	out "   top functions inside check_run, self:"
	bench_cg_top "$RUN/cg-msg.1" no
	out "   top functions of the whole process, self:"
	bench_cg_top "$RUN/cg-full.1" no
	out ""
}

# bench_cg_seed FILE TOTAL - the share of libunbound's one-time start
# (its first query seeds its random generator, nettle's yarrow, in
# Debian's build): paid once per resolver context, i.e. once per
# `check` process but only once per daemon.
bench_cg_seed() {
	local seed
	seed=$(callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
		awk '$NF ~ /libnettle/ && /nettle_yarrow256_seed/ { gsub(/,/, "", $1); print $1; exit }')
	if [ -z "$seed" ]; then
		printf '  %-34s %14s' "(no libunbound RNG seeding seen)" -
		return
	fi
	printf '  %-34s %14s %14s  (minus %s of resolver RNG seeding)' \
		"the message, less resolver seeding" "$(($2 - seed))" "" "$seed"
}

# bench_cg_top FILE INCLUSIVE [ours] - the first $BENCH_TOP functions,
# one line each ("Ir (share) function  object"), the program's own
# frames (totals, main, libc start-up) and repeated names left out;
# with "ours", only functions of the mxwarden binary itself.
bench_cg_top() {
	callgrind_annotate --threshold=100 --inclusive="$2" "$1" 2>/dev/null |
		awk -v top="$BENCH_TOP" -v ours="${3:-}" '
			/^-+$/ { dash++; next }
			dash < 3 || NF < 3 || $1 !~ /^[0-9,]+$/ || n >= top { next }
			/PROGRAM TOTALS|below main|libc_start|:main |\(100\.0%\)/ { next }
			{
				ir = $1; pct = $2 " " $3
				if (pct !~ /\)$/) { pct = $2; i = 3 } else i = 4
				fn = $i; obj = ""
				if ($NF ~ /^\[.*\]$/ && NF > i) {
					obj = $NF; gsub(/^\[|\]$/, "", obj)
					sub(/.*\//, "", obj)
				}
				if (ours != "" && obj != "mxwarden") next
				sub(/^.*:/, "", fn)
				if (fn in seen) next
				seen[fn] = 1
				if (obj == "mxwarden") obj = ""
				printf "    %12s %-9s %-40s %s\n", ir, pct, fn, obj
				n++
			}' | tee -a "$OUT"
}

# ---- 3. concurrency ----

bench_concurrency() {
	local pid=$MXW_INET_PID log=$LOG_inet b rss sent0 sent1 err0 err1 secs rc
	local -a rates=() rss_list=()
	out "3. Concurrency: $BENCH_CONC_BURSTS bursts of $BENCH_CONC_MSGS messages," \
		"   smtp-source -s $BENCH_CONC_SESSIONS, Postfix -> mxwarden (inet)"
	out "$(printf '  %-10s %8s %8s %8s %9s %8s %5s' burst msg/s sent errors "RSS KiB" threads fds)"
	out "$(printf '  %-10s %8s %8s %8s %9s %8s %5s' before - - - \
		"$(bench_rss_kb "$pid")" "$(bench_threads "$pid")" "$(bench_fds "$pid")")"
	for ((b = 0; b < BENCH_CONC_BURSTS; b++)); do
		bench_drain "$QUEUE_inet" 60
		sent0=$(grep -c 'status=sent' "$log") err0=$(bench_pf_errors "$log")
		secs=$(bench_source "$PORT_inet" "$BENCH_CONC_MSGS" "$BENCH_CONC_SESSIONS" \
			"$RUN/source-conc.log")
		rc=$?
		bench_drain "$QUEUE_inet" 60 ||
			bench_fail "burst $b: queue not drained in 60 s"
		sent1=$(grep -c 'status=sent' "$log") err1=$(bench_pf_errors "$log")
		rss=$(bench_rss_kb "$pid")
		rss_list+=("$rss")
		rates+=("$(awk -v n="$BENCH_CONC_MSGS" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')")
		out "$(printf '  %-10s %8s %8s %8s %9s %8s %5s' "$((b + 1))" "${rates[-1]}" \
			"$((sent1 - sent0))" "$((err1 - err0))" "$rss" \
			"$(bench_threads "$pid")" "$(bench_fds "$pid")")"
		[ "$rc" = 0 ] || bench_fail "burst $((b + 1)): smtp-source failed: $(
			tail -3 "$RUN/source-conc.log")"
		[ "$((sent1 - sent0))" = "$BENCH_CONC_MSGS" ] ||
			bench_fail "burst $((b + 1)): $((sent1 - sent0)) of $BENCH_CONC_MSGS delivered"
		[ "$((err1 - err0))" = 0 ] ||
			bench_fail "burst $((b + 1)): Postfix logged milter problems: $(
				grep -E 'milter|status=deferred' "$log" | tail -2)"
	done
	kill -0 "$pid" 2>/dev/null || bench_fail "mxwarden (inet) died"
	kill -0 "$MXW_UNIX_PID" 2>/dev/null || bench_fail "mxwarden (unix) died"
	if [ "${#rss_list[@]}" -ge 2 ]; then
		b=$((rss_list[-1] - rss_list[0]))
		out "   RSS growth after the first burst: $b KiB (bound $BENCH_RSS_GROWTH_KB KiB;" \
			"   the first burst grows thread stacks and malloc arenas once)"
		[ "$b" -le "$BENCH_RSS_GROWTH_KB" ] ||
			bench_fail "mxwarden RSS grew $b KiB over the bursts"
	fi
}

# ---- 4. rules cost ----

# bench_rules_gen N FILE - N regex rules of the usual kinds (body words
# and phrases, subject, headers, sender, raw HTML), none matching the
# rules corpus except RULEGEN_WALLET (so the set is known to be live).
bench_rules_gen() {
	awk -v n="$1" 'BEGIN {
		split("body body body body body body subject header:X-Mailer from_header from raw_body header:*", tg, " ")
		for (i = 0; i < n - 1; i++) {
			t = tg[i % 12 + 1]
			if (t == "body")
				p = sprintf("/\\b(cheap|free|best)\\s+offer%04d\\b/i", i)
			else if (t == "raw_body")
				p = sprintf("/<font[^>]*color=\"?#?ff%04d/i", i)
			else if (t == "from")
				p = sprintf("/^promo%04d@/", i)
			else if (t == "header:*")
				p = sprintf("/^X-Campaign-%04d:/i", i)
			else
				p = sprintf("/limited time %04d|act now %04d/i", i, i)
			printf "rule RULEGEN_%04d %s %s score 0.01\n", i, t, p
		}
		print "rule RULEGEN_WALLET body /send (btc|bitcoin) to/i score 0.01"
	}' >"$2"
}

# bench_rules_check RULES FILE - one `mxwarden check` of a rules-corpus
# message with RULES as the local rule file; JSON on stdout.
bench_rules_check() {
	local rules=$1 f=$2 args
	shift 2
	args=$(sed -n 's/^args //p' "${f%.eml}.expect")
	# shellcheck disable=SC2086
	"$@" "$BENCH_MXW" check -c "$RUN/mi/mxwarden.conf" \
		-o "db_path=$RUN/check.db" -o log_level=err -o dns_timeout=10s \
		-o "local_rules_file=$rules" $args --json "$f"
}

bench_rules() {
	local corpus=$MXW_TOP/tests/rules/corpus p set f t0 t1 n i
	local -A secs=() rate=()
	local -a ratio=() list
	: >"$RUN/r0.rules"
	bench_rules_gen 1000 "$RUN/r1000.rules"
	n=$(ls "$corpus"/*.eml | wc -l)
	out "4. Rules cost: mxwarden check over the $n messages of the rules corpus," \
		"   shipped default.rules alone against default.rules plus 1,000 regex" \
		"   rules (body, subject, headers, sender, raw body), $BENCH_RULES_PASSES passes"
	for set in r0 r1000; do	# the rule set must load and be live
		bench_rules_check "$RUN/$set.rules" "$corpus/plain.eml" \
			>"$RUN/rules-$set.json" 2>"$RUN/rules-$set.err" ||
			bench_fail "check with $set.rules failed: $(head -3 "$RUN/rules-$set.err")"
	done
	grep -q '"RULEGEN_WALLET"' "$RUN/rules-r1000.json" ||
		bench_fail "the 1,000-rule set did not match plain.eml (RULEGEN_WALLET)"
	for ((p = 1; p <= BENCH_RULES_PASSES; p++)); do
		# alternate which set runs first in each pass
		for set in $( ((p % 2)) && echo r0 r1000 || echo r1000 r0); do
			t0=$(bench_now_ns)
			for f in "$corpus"/*.eml; do
				bench_rules_check "$RUN/$set.rules" "$f" >/dev/null 2>&1
			done
			t1=$(bench_now_ns)
			rate[$set.$p]=$(awk -v n="$n" -v a="$t0" -v b="$t1" \
				'BEGIN { printf "%.2f\n", n / ((b - a) / 1e9) }')
		done
		ratio+=("$(awk -v x="${rate[r0.$p]}" -v y="${rate[r1000.$p]}" \
			'BEGIN { printf "%.3f\n", x / y }')")
	done
	for set in r0 r1000; do
		list=()
		for ((p = 1; p <= BENCH_RULES_PASSES; p++)); do list+=("${rate[$set.$p]}"); done
		bench_row "msg/s, $( [ $set = r0 ] && echo default rules || echo default + 1000 rules)" \
			msg/s "${list[@]}"
	done
	bench_row "cost ratio 1000 rules / default" x "${ratio[@]}"
	out "   (one process per message: start-up with rule compilation, DNS" \
		"   with an empty cache; target: ratio under 2)"
	bench_rules_callgrind
	out ""
}

# bench_rules_callgrind - instructions inside check_run (the message
# itself, rules compiled before) and of the whole process, per set.
bench_rules_callgrind() {
	local set f m w
	local -A cnt=()
	if [ "$BENCH_CALLGRIND" != 1 ] || ! command -v valgrind >/dev/null 2>&1; then
		out "   callgrind: skipped"
		return
	fi
	for f in plain multipart; do
		for set in r0 r1000; do
			bench_rules_check "$RUN/$set.rules" "$MXW_TOP/tests/rules/corpus/$f.eml" \
				valgrind --tool=callgrind --toggle-collect=check_run \
				--callgrind-out-file="$RUN/cgr-$f-$set" >/dev/null 2>&1
			cnt[$f.$set]=$(bench_cg_total "$RUN/cgr-$f-$set")
		done
		m=$(awk -v a="${cnt[$f.r0]:-0}" -v b="${cnt[$f.r1000]:-0}" \
			'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }')
		out "$(printf '   %-12s check_run instructions: default %s, +1000 rules %s, ratio %s' \
			"$f.eml" "${cnt[$f.r0]:--}" "${cnt[$f.r1000]:--}" "$m")"
	done
	bench_rules_check "$RUN/r1000.rules" "$MXW_TOP/tests/rules/corpus/plain.eml" \
		valgrind --tool=callgrind --callgrind-out-file="$RUN/cgr-whole" >/dev/null 2>&1
	w=$(bench_cg_total "$RUN/cgr-whole")
	out "   whole process with 1000 rules (compilation included): ${w:--} instructions"
}

# ---- 5. proxy throughput (issue 3) and 6. state cost (issue 5) ----

# bench_proxy NAME RULES [PORT] - an `mxwarden proxy` (user nobody, log
# level info, the test configuration: every check on) in $RUN/NAME in
# front of the sink (or of 127.0.0.1:PORT); RULES become its local.rules.
# Sets PX_PORT_NAME, PX_PID_NAME.
bench_proxy() {
	local name=$1 dir=$RUN/$1 port i pid backend=${3:-$SINK_PORT}
	mkdir -p "$dir"
	chown nobody "$dir"
	ln -sf "$RUN/unbound.conf" "$dir/unbound.conf"
	printf '%s\n' "$2" >"$dir/local.rules"
	port=$(free_port) || return 1
	mxw_write_conf "$dir" "$(free_port)" "proxy_listen = 127.0.0.1:$port" \
		"proxy_backend = 127.0.0.1:$backend" "proxy_backend_forward = none" \
		"proxy_max_per_ip = 1000" "proxy_max_connections = 2000" "user = nobody"
	sed -i 's/^log_level = .*/log_level = info/' "$dir/mxwarden.conf"
	"$BENCH_MXW" proxy -f -c "$dir/mxwarden.conf" >>"$dir/mxwarden.log" 2>&1 &
	pid=$!
	mxw_track_pid "$pid"
	printf -v "PX_PORT_$name" '%s' "$port"
	printf -v "PX_PID_$name" '%s' "$pid"
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench: proxy $name did not start" >&2
	tail -20 "$dir/mxwarden.log" >&2
	return 1
}

# bench_px_round PORT MSGS SESSIONS LOG - one timed smtp-source run to
# PORT; prints msg/s, or fails on any SMTP error. With BENCH_PX_DRAIN
# set (a Postfix queue), waits first until that queue is empty.
bench_px_round() {
	local secs
	if [ -n "${BENCH_PX_DRAIN:-}" ] && ! bench_drain "$BENCH_PX_DRAIN" 60; then
		echo "queue $BENCH_PX_DRAIN does not drain" >>"$4"
		return 1
	fi
	secs=$(bench_source "$1" "$2" "$3" "$4") || return 1
	awk -v n="$2" -v s="$secs" 'BEGIN { printf "%.2f\n", n / s }'
}

# bench_ab LABEL_A PORT_A LABEL_B PORT_B SESSIONS - bench_abn for two
# setups: BENCH_AB_RATIO is the median of B/A.
bench_ab() {
	bench_abn "$5" "$1" "$2" "$3" "$4"
}

# bench_abn SESSIONS LABEL_0 PORT_0 LABEL_1 PORT_1 [LABEL_2 PORT_2] -
# BENCH_PROXY_ROUNDS rounds of every setup back to back, each round
# starting with the next setup (0 1 2, 1 2 0, 2 0 1, ...); a row for
# each setup and the per-round ratios 1/0, 2/0 and 1/2 (of the rounds
# both completed). BENCH_AB_RATIO gets the median of 1/0.
bench_abn() {
	local s=$1 r i j k n x
	local -a label=() port=() col
	local -A rate=()	# rate[SETUP,ROUND]
	shift
	while [ $# -ge 2 ]; do
		label+=("$1")
		port+=("$2")
		shift 2
	done
	n=${#label[@]}
	for ((r = 1; r <= BENCH_PROXY_ROUNDS; r++)); do
		for ((k = 0; k < n; k++)); do
			i=$(((r - 1 + k) % n))
			if x=$(bench_px_round "${port[i]}" "$BENCH_PROXY_MSGS" "$s" \
				"$RUN/px-source.log"); then
				rate[$i,$r]=$x
			else
				bench_fail "${label[i]}, -s $s, round $r: $(tail -2 "$RUN/px-source.log")"
			fi
		done
	done
	for ((i = 0; i < n; i++)); do
		col=()
		for ((r = 1; r <= BENCH_PROXY_ROUNDS; r++)); do
			[ -n "${rate[$i,$r]:-}" ] && col+=("${rate[$i,$r]}")
		done
		bench_row "msg/s, ${label[i]}, -s $s" msg/s "${col[@]}"
	done
	for k in "1 0" "2 0" "1 2"; do
		read -r i j <<<"$k"
		[ "$i" -lt "$n" ] && [ "$j" -lt "$n" ] || continue
		col=()
		for ((r = 1; r <= BENCH_PROXY_ROUNDS; r++)); do
			[ -n "${rate[$i,$r]:-}" ] && [ -n "${rate[$j,$r]:-}" ] &&
				col+=("$(awk -v a="${rate[$i,$r]}" -v b="${rate[$j,$r]}" \
					'BEGIN { printf "%.3f\n", a / b }')")
		done
		bench_row "ratio ${label[i]} / ${label[j]}, -s $s" x "${col[@]}"
		[ "$k" = "1 0" ] && BENCH_AB_RATIO=$(printf '%s\n' "${col[@]}" |
			bench_stats | cut -d' ' -f1)
	done
}

# bench_px_warm PORT - a warm-up run (DNS answers cached, threads up)
bench_px_warm() {
	bench_px_round "$1" 40 4 "$RUN/px-source.log" >/dev/null ||
		bench_fail "warm-up through port $1 failed: $(tail -2 "$RUN/px-source.log")"
}

# bench_target NAME VALUE MIN - a line saying whether VALUE reached MIN
bench_target() {
	if [ "$2" = - ] || [ -z "$2" ]; then
		out "   $1: no figure"
	elif awk -v v="$2" -v m="$3" 'BEGIN { exit !(v >= m) }'; then
		out "   $1: median $2, target >= $3: met"
	else
		out "   $1: median $2, target >= $3: NOT met"
	fi
}

bench_proxy_tp() {
	local s c0 c1
	local -a relay
	out "5. Proxy throughput: smtp-source straight to smtp-sink against" \
		"   smtp-source -> mxwarden proxy (every check, default rules, no rate" \
		"   limits) -> smtp-sink; $BENCH_PROXY_MSGS messages per round (one per" \
		"   connection, corpus/rsa.eml), $BENCH_PROXY_ROUNDS rounds per setup, after a warm-up"
	out "   The third setup, a TCP relay with no SMTP logic at all (haproxy, mode" \
		"   tcp, one sink connection per client connection), shows what any proxy" \
		"   that terminates TCP on both sides costs on this machine"
	if [ -z "${PX_PORT_px:-}" ]; then
		bench_proxy px "" || { bench_fail "the proxy does not start"; out ""; return; }
	fi
	relay=()
	if bench_relay; then
		relay=("TCP relay" "$RELAY_PORT")
		bench_px_warm "$RELAY_PORT"
	else
		out "   TCP relay: skipped, $RELAY_WHY"
	fi
	bench_px_warm "$SINK_PORT"
	bench_px_warm "$PX_PORT_px"
	for s in $BENCH_PROXY_CONC; do
		c0=$(bench_cpu_ticks "$PX_PID_px")
		bench_abn "$s" direct "$SINK_PORT" proxy "$PX_PORT_px" "${relay[@]}"
		c1=$(bench_cpu_ticks "$PX_PID_px")
		bench_target "proxy / direct at -s $s" "$BENCH_AB_RATIO" 0.8
		out "   proxy CPU (user + system) per message at -s $s: $(awk -v a="$c0" \
			-v b="$c1" -v t="$(getconf CLK_TCK)" \
			-v n=$((BENCH_PROXY_ROUNDS * BENCH_PROXY_MSGS)) \
			'BEGIN { if (a == "" || b == "" || n == 0) print "-"; else
				printf "%.3f ms", (b - a) * 1000 / t / n }')"
	done
	out "   proxy: RSS $(bench_rss_kb "$PX_PID_px") KiB, threads $(
		bench_threads "$PX_PID_px"), fds $(bench_fds "$PX_PID_px") after the rounds;" \
		"   log problems: $(bench_px_errors px)" ""
	[ "$(bench_px_errors px)" = 0 ] || bench_fail "proxy px logged errors or refusals"
	bench_proxy_postfix
}

# bench_proxy_postfix - the same comparison in front of a real MTA: the
# Postfix without milter of section 1 (queue file, fsync, delivery to
# the sink) straight, against the proxy in front of it. For reference:
# what an administrator who moves Postfix behind the proxy sees.
bench_proxy_postfix() {
	local s
	out "   The same in front of a real MTA: smtp-source straight to Postfix (no" \
		"   milter; its queue, fsync and delivery to the sink) against" \
		"   smtp-source -> mxwarden proxy -> that Postfix; each round after" \
		"   Postfix's queue has drained"
	bench_proxy pxp "" "$PORT_none" || { bench_fail "the proxy in front of Postfix does not start"; out ""; return; }
	BENCH_PX_DRAIN=$QUEUE_none bench_px_warm "$PORT_none"
	BENCH_PX_DRAIN=$QUEUE_none bench_px_warm "$PX_PORT_pxp"
	for s in $BENCH_PROXY_CONC; do
		BENCH_PX_DRAIN=$QUEUE_none bench_ab Postfix "$PORT_none" \
			"via proxy" "$PX_PORT_pxp" "$s"
	done
	out "   log problems: $(bench_px_errors pxp), Postfix: $(bench_pf_errors "$LOG_none")" ""
	[ "$(bench_px_errors pxp)" = 0 ] || bench_fail "proxy pxp logged errors or refusals"
	[ "$(bench_pf_errors "$LOG_none")" = 0 ] || bench_fail "Postfix 'none' logged errors"
}

# bench_px_errors NAME - refusals, tempfails and backend failures in the
# log of proxy NAME
bench_px_errors() {
	grep -cE 'proxy: .* (tempfail|reject) [45][0-9][0-9]|BACKEND FAILURE|TEMPERROR|STATE_DB_ERROR' \
		"$RUN/$1/mxwarden.log" 2>/dev/null
}

bench_state() {
	local rules k n
	rules='harvest threshold 1000000
harvest window 1h
harvest block 1h'
	for k in ip net sender sender_domain conn_per_ip; do
		rules="$rules
ratelimit bench_$k $k 1000000000/1h"
	done
	rules="$rules
ratelimit bench_msg_per_conn msg_per_conn 1000
ratelimit bench_rcpt_per_msg rcpt_per_msg 1000"
	out "6. State cost: transactions per second through the proxy at" \
		"   smtp-source -s $BENCH_STATE_SESSIONS, state off (no rate limits, harvest" \
		"   threshold 0: only the block lookup and the history row) against state on" \
		"   (7 rate limits: ip, net, sender, sender_domain, conn_per_ip," \
		"   msg_per_conn, rcpt_per_msg; harvest counting); $BENCH_PROXY_MSGS messages" \
		"   per round, $BENCH_PROXY_ROUNDS rounds per setup"
	bench_proxy px0 "harvest threshold 0" &&
		bench_proxy pxs "$rules" ||
		{ bench_fail "the proxies for the state cost do not start"; out ""; return; }
	bench_px_warm "$PX_PORT_px0"
	bench_px_warm "$PX_PORT_pxs"
	bench_ab "state off" "$PX_PORT_px0" "state on" "$PX_PORT_pxs" "$BENCH_STATE_SESSIONS"
	bench_target "state on / state off" "$BENCH_AB_RATIO" 0.9
	n=$(sqlite3 "$RUN/pxs/mxwarden.db" \
		"SELECT count(*) FROM counters WHERE kind LIKE 'rate:bench_%'" 2>/dev/null)
	out "   state on: ${n:-?} rate counters live in its database; log problems: $(
		bench_px_errors pxs)" ""
	[ "${n:-0}" -ge 5 ] || bench_fail "the state-on proxy kept no rate counters"
	for n in px0 pxs; do
		[ "$(bench_px_errors $n)" = 0 ] || bench_fail "proxy $n logged errors or refusals"
	done
	bench_state_blocks "$rules"
}

# bench_state_blocks RULES - state on, against the same with 20,000
# harvest blocks of other IPs in the database (a dictionary attack from
# many addresses): the block lookup at each connection must not read
# them all.
bench_state_blocks() {
	out "   The same state on, against state on with 20,000 harvest blocks of" \
		"   other IPs in its database"
	bench_proxy pxb "$1" || { bench_fail "the proxy with blocks does not start"; out ""; return; }
	/usr/bin/python3 - "$RUN/pxb/mxwarden.db" <<'PY' ||
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10)
now = int(time.time())
db.executemany("INSERT OR REPLACE INTO entries VALUES ('block', ?, 'harvest', ?, ?)",
               [("10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255), now, now + 86400)
                for i in range(20000)])
db.commit()
PY
		{ bench_fail "cannot add the blocks"; out ""; return; }
	bench_px_warm "$PX_PORT_pxb"
	bench_ab "state on" "$PX_PORT_pxs" "20,000 blocks" "$PX_PORT_pxb" "$BENCH_STATE_SESSIONS"
	out "   log problems: $(bench_px_errors pxb)" ""
	[ "$(bench_px_errors pxb)" = 0 ] || bench_fail "proxy pxb logged errors or refusals"
}
