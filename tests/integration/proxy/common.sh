# tests/integration/proxy/common.sh - helpers shared by the proxy_*.sh
# suites (source after lib.sh and mxw_rundir).
#
#   start_proxy NAME BACKEND [LINE...]  mxwarden proxy with its own config
#                               in $MXW_RUN/NAME; sets PROXY_PORT, PROXY_PID
#                               (PROXY_TLS_PORT when a line asks for it:
#                               "proxy_listen_tls = @TLS@"); $PROXY_RULES
#                               becomes its local.rules
#   pmail IP HELO FROM RCPT FILE [SWAKS...]   swaks through the proxy;
#                               prints the last reply before QUIT
#   raw_smtp PORT FILE [IP]     FILE's bytes in one write after the banner
#   smtpc ARGS...               tests/integration/proxy/smtpc.py (scripted
#                               client: STARTTLS, implicit TLS, PROXY)
# Also in $PROXY_HELPERS: conns.py (connections held at once, for the
# connection limits), idle_clients.py (many idle clients).
#   make_cert DIR               self-signed cert.pem + key.pem (key 0600)
#   count_sink                  messages in $SINK_DIR
#   PF_BDAT_250                 Postfix's 250 to a message sent as BDAT (the
#                               proxy's way with a backend that offers
#                               CHUNKING: proxy_backend_chunking), a regex

PROXY_HELPERS=$MXW_TOP/tests/integration/proxy
PF_BDAT_250='^250 2\.0\.0 Ok: [0-9]+ bytes queued as '

start_proxy() {
	local name=$1 backend=$2 run=$MXW_RUN/$1 i l lines=()
	shift 2
	mkdir -p "$run"
	chmod 755 "$run"
	# The proxy opens its database (db_path in $run) as user nobody.
	chown nobody "$run"
	[ -f "$MXW_RUN/unbound.conf" ] && cp "$MXW_RUN/unbound.conf" "$run/"
	printf '%s\n' "${PROXY_RULES:-}" >"$run/local.rules"
	PROXY_PORT=$(free_port) || return 1
	PROXY_TLS_PORT=
	for l in "$@"; do
		if [[ $l == *@TLS@* ]]; then
			PROXY_TLS_PORT=$(free_port) || return 1
			l=${l//@TLS@/127.0.0.1:$PROXY_TLS_PORT}
		fi
		lines+=("$l")
	done
	mxw_write_conf "$run" "$(free_port)" \
		"proxy_listen = 127.0.0.1:$PROXY_PORT" \
		"proxy_backend = $backend" \
		"user = nobody" "${lines[@]}"
	# The DNS config stays the suite's (its paths point there).
	sed -i "s|^dns_unbound_conf = .*|dns_unbound_conf = $MXW_RUN/unbound.conf|" \
		"$run/mxwarden.conf"
	"$MXW_BIN/mxwarden" proxy -f -c "$run/mxwarden.conf" >>"$run/mxwarden.log" 2>&1 &
	PROXY_PID=$!
	mxw_track_pid "$PROXY_PID"
	for ((i = 0; i < 200; i++)); do
		kill -0 "$PROXY_PID" 2>/dev/null || {
			tail -20 "$run/mxwarden.log" >&2; return 1; }
		(exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

pmail() {
	local ip=$1 helo=$2 from=$3 rcpt=$4 file=$5 out
	shift 5
	out=$(timeout 60 swaks --server "127.0.0.1:${PMAIL_PORT:-$PROXY_PORT}" \
		--local-interface "$ip" --ehlo "$helo" --from "$from" \
		--to "$rcpt" --data "@$file" --timeout 30 --suppress-data "$@" 2>&1)
	printf '%s\n' "== $ip $helo $from $rcpt $*" "$out" >>"$MXW_RUN/swaks.log"
	printf '%s\n' "$out" | awk '
		/^ *<[-~*]+ / {
			sub(/^ *<[-~*]+ +/, ""); line = $0
			if (line ~ /^221[ -]/) next
			last = line
		}
		END { print last }'
}

raw_smtp() {
	/usr/bin/python3 - "$1" "$2" "${3:-127.0.0.6}" <<'PYEOF'
import socket, sys, time
port, path, ip = int(sys.argv[1]), sys.argv[2], sys.argv[3]
data = open(path, 'rb').read()
s = socket.socket()
s.settimeout(15)
s.bind((ip, 0))
s.connect(('127.0.0.1', port))
buf = b''
deadline = time.time() + 15
while b'\r\n' not in buf and time.time() < deadline:
    c = s.recv(4096)
    if not c:
        break
    buf += c
try:
    s.sendall(data)
except OSError:
    pass
while time.time() < deadline:
    try:
        c = s.recv(65536)
    except OSError:
        break
    if not c:
        break
    buf += c
for l in buf.decode('latin-1').split('\r\n'):
    if l:
        print(l)
PYEOF
}

smtpc() {
	timeout 60 /usr/bin/python3 "$PROXY_HELPERS/smtpc.py" "$@"
}

make_cert() {
	local dir=$1
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.mxw.test \
		-keyout "$dir/key.pem" -out "$dir/cert.pem" >"$dir/openssl.log" 2>&1 ||
		return 1
	chmod 600 "$dir/key.pem"
}

count_sink() { find "$SINK_DIR" -type f | wc -l; }
