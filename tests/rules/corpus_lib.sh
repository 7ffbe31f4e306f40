# tests/rules/corpus_lib.sh - the rules corpus over SMTP, shared by
# tests/integration/rules_milter.sh and rules_proxy.sh (source it after
# tests/integration/lib.sh; needs $SINK_DIR, $CORPUS, $SEND, $PY).
#
#   corpus_run SRC_IP PORT MODE LOG [NAME...]
#       sends each corpus message (all, or the NAMEs) from SRC_IP to
#       127.0.0.1:PORT, the client address passed by MODE (see
#       smtp_send.py: xclient or proxy), and checks its NAME.expect:
#       action accept  -> 250 at the end of data, delivered once;
#       action reject  -> a 5xx (at the expected stage when "stage" is
#                         given; see corpus_stage_ok), nothing delivered;
#       reply ...      -> the exact reply line;
#       has / not      -> in the delivered X-Spam-Status tests= list, or,
#                         for a refused message, in LOG's summary line;
#       score SYM N    -> from LOG's summary line (one decimal there);
#       skipped SYM    -> not tested here (see rules.sh): after an
#                         accept these front ends still run the checks
#                         to the end of the message;
#       spam yes|no    -> X-Spam-Flag of the delivered message.
#   "args" gives --ip, --helo, --from, --rcpt as for `mxwarden check`.

# corpus_arg ARGS OPTION - the value of OPTION in an args line.
corpus_arg() {
	local want=$2 prev=
	for w in $1; do
		[ "$prev" = "$want" ] && { echo "$w"; return; }
		prev=$w
	done
}

# corpus_summary LOG FROM_LINE IP - the first summary line for client IP
# in LOG after line FROM_LINE (waits up to 5 s: the line is written when
# the transaction closes).
corpus_summary() {
	local log=$1 from=$2 ip=$3 i l
	for ((i = 0; i < 50; i++)); do
		l=$(tail -n +"$((from + 1))" "$log" | grep -F "[$ip]:" | grep ' symbols=' | head -1)
		[ -n "$l" ] && { echo "$l"; return 0; }
		sleep 0.1
	done
	return 1
}

# corpus_stage_ok WANT GOT - the engine's stage against the SMTP step
# that got the refusal. Postfix gives a milter's HELO refusal at the
# next MAIL FROM (the client may still say EHLO again), and the proxy
# one at-connect refusal at its next command; a header or body verdict
# is given at the end of data.
corpus_stage_ok() {
	local want=$1 got=$2
	[ "$want" = "$got" ] && return 0
	case $want:$got in
	connect:helo | helo:mail | header:eom | eoh:eom | body:eom) return 0 ;;
	esac
	return 1
}

# corpus_check_syms KIND LIST EXP - has/not lines of EXP against LIST (a
# space-separated symbol list); prints the differences.
corpus_check_syms() {
	local kind=$1 list=" $2 " exp=$3 s
	for s in $(sed -n 's/^has //p' "$exp"); do
		[[ $list == *" $s "* ]] || echo "$kind: missing $s"
	done
	for s in $(sed -n 's/^not //p' "$exp"); do
		[[ $list == *" $s "* ]] && echo "$kind: unexpected $s"
	done
}

corpus_one() {
	local src=$1 port=$2 mode=$3 log=$4 name=$5
	local exp=$CORPUS/$name.expect args ip helo from rcpt r stage code
	local want_act want_stage want_reply n0 l0 sum syms d errs=() xs
	args=$(sed -n 's/^args //p' "$exp")
	ip=$(corpus_arg "$args" --ip) helo=$(corpus_arg "$args" --helo)
	from=$(corpus_arg "$args" --from) rcpt=$(corpus_arg "$args" --rcpt)
	want_act=$(sed -n 's/^action //p' "$exp")
	want_stage=$(sed -n 's/^stage //p' "$exp")
	want_reply=$(sed -n 's/^reply //p' "$exp")
	n0=$(find "$SINK_DIR" -type f | wc -l)
	l0=$(wc -l <"$log")
	r=$("$PY" "$SEND" one "$port" "$src" "$ip" "$helo" "$from" "$rcpt" \
		"$CORPUS/$name.eml" "$mode")
	stage=${r%% *} r=${r#* } code=${r%% *}
	sum=$(corpus_summary "$log" "$l0" "$ip") ||
		errs+=("no summary line for [$ip] in the log")
	syms=$(printf '%s\n' "$sum" | sed -n 's/.* symbols=\([^ ]*\) .*/\1/p' |
		tr ',' '\n' | sed 's/(.*//' | tr '\n' ' ')
	case ${want_act:-any} in
	accept)
		[ "$stage $code" = "eom 250" ] ||
			errs+=("reply at $stage: $r, want 250 at the end of data") ;;
	reject)
		[[ $code == 5?? ]] || errs+=("reply at $stage: $r, want a 5xx")
		[ -z "$want_stage" ] || corpus_stage_ok "$want_stage" "$stage" ||
			errs+=("refused at $stage, engine stage $want_stage") ;;
	any) ;;
	*)	errs+=("action $want_act: not handled by this suite") ;;
	esac
	[ -z "$want_reply" ] || [ "$r" = "$want_reply" ] ||
		errs+=("reply '$r', want '$want_reply'")
	if [ "$code" = 250 ]; then
		if wait_delivered $((n0 + 1)) 20; then
			d=$(delivered_file $((n0 + 1)))
			xs=$(header_of "$d" X-Spam-Status | tr -d ' \t')
			xs=${xs#*tests=}
			mapfile -t -O "${#errs[@]}" errs < <(corpus_check_syms \
				X-Spam-Status "${xs//,/ }" "$exp")
			case $(sed -n 's/^spam //p' "$exp"):$(header_of "$d" X-Spam-Flag) in
			yes:YES | no: | :*) ;;
			*) errs+=("X-Spam-Flag '$(header_of "$d" X-Spam-Flag)'") ;;
			esac
		else
			errs+=("accepted but not delivered")
		fi
	else
		mapfile -t -O "${#errs[@]}" errs < <(corpus_check_syms log "$syms" "$exp")
		sleep 0.2
		[ "$(find "$SINK_DIR" -type f | wc -l)" = "$n0" ] ||
			errs+=("refused but delivered")
	fi
	while read -r _ s n; do
		[ -n "$s" ] || continue
		printf '%s\n' "$sum" | grep -q "[ ,=]$s($(printf '%.1f' "$n"))" ||
			errs+=("score $s: want $n in: ${sum#*symbols=}")
	done < <(grep '^score ' "$exp")
	if [ ${#errs[@]} = 0 ]; then
		ok "corpus $name ($mode): $stage $code"
	else
		not_ok "corpus $name ($mode)" "${errs[@]}" "reply: $stage $r" \
			"log: ${sum:-none}"
	fi
}

corpus_run() {
	local src=$1 port=$2 mode=$3 log=$4 names=() n exp
	shift 4
	if [ $# -gt 0 ]; then
		names=("$@")
	else
		for exp in "$CORPUS"/*.expect; do
			names+=("$(basename "$exp" .expect)")
		done
	fi
	for n in "${names[@]}"; do
		corpus_one "$src" "$port" "$mode" "$log" "$n"
	done
}

# corpus_all MODE PORT LOG - the whole corpus against a running daemon
# from 127.0.0.1. A zone that gave an unknown code is skipped for 60 s
# by the daemon (one process, unlike `mxwarden check`), so errcode runs
# after the rest, and unhealthy.expect is replaced by what the skip
# means: the next client, even a listed one, gets no DNSBL symbol.
# MODE proxy: catastrophic.eml (one 30,000-octet line) is refused.
corpus_all() {
	local mode=$1 port=$2 log=$3 names=() exp n
	for exp in "$CORPUS"/*.expect; do
		n=$(basename "$exp" .expect)
		case $mode:$n in *:errcode | *:unhealthy | proxy:catastrophic) continue ;; esac
		names+=("$n")
	done
	corpus_run 127.0.0.1 "$port" "$mode" "$log" "${names[@]}" errcode
	if [ "$mode" = proxy ]; then
		# The proxy refuses a line over 998 octets (RFC 5322 2.1.1);
		# catastrophic_qp.eml has the same text in short QP lines.
		{ grep '^args ' "$CORPUS/catastrophic.expect"
		  printf 'action reject\nstage eom\n'
		  printf 'reply 552 5.6.0 Message has a line longer than 998 characters\n'
		} >"$MXW_RUN/catastrophic.expect"
		cp "$CORPUS/catastrophic.eml" "$MXW_RUN/"
		CORPUS=$MXW_RUN corpus_one 127.0.0.1 "$port" "$mode" "$log" catastrophic
	fi
	printf 'args --ip 198.51.100.2 --helo mail.sender.test --from carol@mx.sender.test --rcpt bob@local.test\nnot DNSBL_BL DNSBL_UNHEALTHY\naction accept\n' \
		>"$MXW_RUN/skipped.expect"
	cp "$CORPUS/dnsbl.eml" "$MXW_RUN/skipped.eml"
	CORPUS=$MXW_RUN corpus_one 127.0.0.1 "$port" "$mode" "$log" skipped
}
