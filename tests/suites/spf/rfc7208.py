"""rfc7208.py - run the RFC 7208 SPF test suite through mxwarden's check.

    rfc7208.py --spfq BIN --yaml FILE --xfail FILE [--only NAME...]
               [--timeout-ms MS]

For every YAML document of the suite, its zonedata is served by
zonedns.ZoneServer on 127.0.0.1; each test is evaluated by the spfq test
tool (mxwarden's SPF check with the real resolver, libunbound pointed at
that server through a generated unbound.conf), one process per test so
that no resolver cache outlives its document.

A test passes when the result is the expected one (or one of a list) and,
where the suite gives an explanation and the result is "fail", the
explanation is the same ("DEFAULT" means our own default explanation).

The expected-failures file lists tests still failed, one per line:
    NAME  REASON...
A listed test that fails prints "ok N - NAME # SKIP expected failure:
REASON"; an unlisted failure and a listed test that passes are both
"not ok". Then a per-section table and the closing line as "#" comments,
and the plan. Exit 0 when nothing unexpected happened.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zonedns  # noqa: E402

# Our default explanation (policy/spf.c SPF_OUR_EXP), expanded.
DEFAULT_EXP = re.compile(r"^\S+ is not a permitted sender for \S+$")

UNBOUND_CONF = """server:
	do-not-query-localhost: no
	unblock-lan-zones: yes
	insecure-lan-zones: yes
	qname-minimisation: no
	harden-glue: no
	minimal-responses: no
	infra-host-ttl: 1
	infra-keep-probing: yes
	val-permissive-mode: yes
	local-zone: "localhost." nodefault
	local-zone: "127.in-addr.arpa." nodefault
	local-zone: "test." nodefault
	local-zone: "invalid." nodefault
forward-zone:
	name: "."
	forward-addr: 127.0.0.1@{port}
"""


def read_xfail(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            out[parts[0]] = parts[1] if len(parts) > 1 else "(no reason)"
    return out


def run_spfq(args, conf, t):
    cmd = [args.spfq, "-c", conf, "-t", str(args.timeout_ms),
           "-i", str(t["host"])]
    if t.get("helo") is not None:
        cmd += ["-h", str(t["helo"])]
    cmd += ["-m", str(t.get("mailfrom") or "")]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
    except subprocess.TimeoutExpired:
        return "(hung)", "", ""
    out = p.stdout.decode("utf-8", "replace").rstrip("\n")
    if p.returncode != 0 or out.count("\t") < 2:
        err = p.stderr.decode("utf-8", "replace").strip().splitlines()
        return "(exit %d)" % p.returncode, "", err[-1] if err else ""
    res, exp, reason = out.split("\t", 2)
    return res, ("" if exp == "-" else exp), reason


def judge(t, res, exp):
    """None when the test passed, else why not."""
    want = t["result"]
    wants = want if isinstance(want, list) else [want]
    if res not in wants:
        return "got %s, want %s" % (res, "|".join(wants))
    wexp = t.get("explanation")
    if wexp is not None and res == "fail":
        ok = (DEFAULT_EXP.match(exp) is not None if wexp == "DEFAULT"
              else exp == wexp)
        if not ok:
            return "explanation %r, want %r" % (exp, wexp)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spfq", required=True)
    ap.add_argument("--yaml", required=True)
    ap.add_argument("--xfail", required=True)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--timeout-ms", type=int, default=1000)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))

    with open(args.yaml, "rb") as f:
        docs = list(yaml.safe_load_all(f))
    xfail = read_xfail(args.xfail)
    seen = set()
    n = passed = xfailed = unexpected = fixed = 0
    table = []
    srv = zonedns.ZoneServer()
    try:
        with tempfile.TemporaryDirectory(prefix="spf7208.") as tmp:
            conf = os.path.join(tmp, "unbound.conf")
            with open(conf, "w") as f:
                f.write(UNBOUND_CONF.format(port=srv.port))
            for doc in docs:
                srv.load(doc.get("zonedata"))
                sec = [doc["description"], 0, 0, 0, 0]
                for name, t in doc["tests"].items():
                    if args.only and name not in args.only:
                        continue
                    seen.add(name)
                    n += 1
                    sec[1] += 1
                    res, exp, reason = run_spfq(args, conf, t)
                    why = judge(t, res, exp)
                    label = "%s: %s" % (doc["description"], name)
                    if why is None and name in xfail:
                        fixed += 1
                        sec[4] += 1
                        print("not ok %d - %s # listed as an expected "
                              "failure but passes" % (n, label))
                    elif why is None:
                        passed += 1
                        sec[2] += 1
                        print("ok %d - %s" % (n, label))
                    elif name in xfail:
                        xfailed += 1
                        sec[3] += 1
                        print("ok %d - %s # SKIP expected failure: %s"
                              % (n, label, xfail[name]))
                        print("#   %s (%s)" % (why, reason))
                    else:
                        unexpected += 1
                        sec[4] += 1
                        print("not ok %d - %s" % (n, label))
                        print("#   %s (%s)" % (why, reason))
                    sys.stdout.flush()
                table.append(sec)
    finally:
        srv.close()
    for name in sorted(set(xfail) - seen):
        if not args.only:
            n += 1
            unexpected += 1
            print("not ok %d - expected-failures lists %s, which is not "
                  "in the suite" % (n, name))
    print("#")
    print("# %-38s %5s %6s %6s %6s" % ("section", "tests", "passed",
                                        "xfail", "failed"))
    for s in table:
        print("# %-38s %5d %6d %6d %6d" % tuple(s))
    print("# %-38s %5d %6d %6d %6d" % ("total", sum(s[1] for s in table),
                                        passed, xfailed,
                                        unexpected + fixed))
    print("#")
    print("# %d passed, %d failed (%d expected failures, %d unexpected, "
          "%d listed but passing)" % (passed, xfailed + unexpected, xfailed,
                                      unexpected, fixed))
    print("1..%d" % n)
    return 0 if unexpected == 0 and fixed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
