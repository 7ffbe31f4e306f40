"""jfields.py - turn one `mxwarden check --json` answer into shell
variable assignments for tests/integration/checks.sh.

    /usr/bin/python3 jfields.py FILE      prints J_NAME='value' lines

J_json is "ok" when FILE holds one JSON object, else "bad" (and every
other variable is empty). Lists become space-separated words; JSON null
and missing keys become the empty string. Header edits: J_ar is the
value of the inserted Authentication-Results, J_xss of X-Spam-Status,
J_flag of X-Spam-Flag; J_hdrops lists every edit as op:name:index.
"""
import json
import shlex
import sys


def s(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "%.1f" % v
    return str(v)


def get(d, *path):
    for p in path:
        if isinstance(d, dict):
            d = d.get(p)
        elif isinstance(d, list) and isinstance(p, int) and p < len(d):
            d = d[p]
        else:
            return None
    return d


def fields(d):
    f = {}
    f["action"] = get(d, "action")
    f["stage"] = get(d, "stage")
    f["decided"] = get(d, "decided_by")
    f["code"] = get(d, "reply", "code")
    f["xcode"] = get(d, "reply", "xcode")
    f["text"] = get(d, "reply", "text")
    f["score"] = get(d, "score")
    f["syms"] = " ".join(s(x.get("name")) for x in d.get("symbols") or [])
    c = d.get("checks") or {}
    f["iprev"] = get(c, "iprev", "result")
    f["iprev_name"] = get(c, "iprev", "name")
    f["spf"] = get(c, "spf", "result")
    f["spf_id"] = get(c, "spf", "identity")
    f["spf_domain"] = get(c, "spf", "domain")
    f["spf_helo"] = get(c, "spf_helo", "result")
    sigs = c.get("dkim") or []
    f["dkim"] = " ".join(s(x.get("result")) for x in sigs)
    f["dkim_d"] = " ".join(s(x.get("d")) for x in sigs)
    f["dkim_s"] = " ".join(s(x.get("s")) for x in sigs)
    f["dkim_a"] = " ".join(s(x.get("a")) for x in sigs)
    f["dmarc"] = get(c, "dmarc", "result")
    f["dmarc_from"] = get(c, "dmarc", "from_domain")
    f["dmarc_policy"] = get(c, "dmarc", "policy")
    f["dmarc_dis"] = get(c, "dmarc", "disposition")
    ops = d.get("headers") or []
    f["hdrops"] = " ".join("%s:%s:%s" % (s(h.get("op")), s(h.get("name")),
                                         s(h.get("index"))) for h in ops)
    for key, op, name in (("ar", "insert", "Authentication-Results"),
                          ("xss", "add", "X-Spam-Status"),
                          ("flag", "add", "X-Spam-Flag")):
        f[key] = next((h.get("value") for h in ops
                       if h.get("op") == op and h.get("name") == name), None)
    return f


def main():
    names = ["action", "stage", "decided", "code", "xcode", "text", "score",
             "syms", "iprev", "iprev_name", "spf", "spf_id", "spf_domain",
             "spf_helo", "dkim", "dkim_d", "dkim_s", "dkim_a", "dmarc",
             "dmarc_from", "dmarc_policy", "dmarc_dis", "hdrops", "ar",
             "xss", "flag"]
    try:
        with open(sys.argv[1], encoding="utf-8", errors="replace") as fh:
            d = json.load(fh)
        if not isinstance(d, dict):
            raise ValueError("not an object")
        f = fields(d)
        ok = "ok"
        print("J_error=")
    except (OSError, ValueError) as e:
        f = {}
        ok = "bad"
        print("J_error=%s" % shlex.quote(str(e)))
    print("J_json=%s" % ok)
    for n in names:
        print("J_%s=%s" % (n, shlex.quote(s(f.get(n)))))


main()
