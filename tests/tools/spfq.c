/*
 * spfq - evaluate one SPF case through mxwarden's SPF check (test tool).
 *
 *   spfq [-s server] [-c unbound.conf] [-t timeout_ms] [-b budget_ms]
 *        -i IP [-h HELO] [-m MAILFROM]
 *
 * Builds the real resolver (dns_new) and the real SPF check
 * (chk_spf_new), then runs chk_spf_eval() once: the MAIL FROM identity,
 * or the HELO identity ("postmaster@HELO") when MAILFROM is empty or
 * absent, as the daemon does for the null sender. Prints one line:
 *   RESULT<TAB>EXPLANATION<TAB>REASON
 * RESULT is pass, fail, softfail, neutral, none, temperror or permerror;
 * EXPLANATION is "-" when there is none; tabs and newlines in the texts
 * are printed as spaces. Exit: 0 evaluated, 1 set-up failure, 2 usage.
 * Used by the RFC 7208 conformance driver (tests/suites/spf_rfc7208.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"
#include "spf.h"
#include "txn.h"
#include "util.h"

/* The SPF module's txn entry points need this; spfq never calls them. */
void
txn_symbol(struct txn *t, const char *name, const char *detail)
{
	(void)t;
	(void)name;
	(void)detail;
}

static void
spfq_usage(void)
{
	fprintf(stderr, "usage: spfq [-s server] [-c unbound.conf] "
	    "[-t timeout_ms] [-b budget_ms] -i IP [-h HELO] [-m MAILFROM]\n");
	exit(2);
}

/* spfq_print - s with tabs, newlines and other control octets as spaces. */
static void
spfq_print(const char *s)
{
	for (; *s != '\0'; s++)
		putchar((unsigned char)*s < 0x20 ? ' ' : *s);
}

static const char *
spfq_result(enum chk_res r)
{
	switch (r) {
	case CHK_PASS:		return "pass";
	case CHK_FAIL:		return "fail";
	case CHK_SOFTFAIL:	return "softfail";
	case CHK_NEUTRAL:	return "neutral";
	case CHK_TEMPERROR:	return "temperror";
	case CHK_PERMERROR:	return "permerror";
	case CHK_NONE:
	case CHK_POLICY:
		break;
	}
	return "none";
}

int
main(int argc, char **argv)
{
	struct dns_opts o = { NULL, 2000, NULL };
	const char *ip = NULL, *helo = NULL, *from = NULL;
	char err[256], reason[512], exp[1024], *sender;
	struct chk_spf *s;
	struct dns *d;
	enum chk_res r;
	int c, budget = 0, helo_id;

	while ((c = getopt(argc, argv, "s:c:t:b:i:h:m:")) != -1) {
		switch (c) {
		case 's': o.server = optarg; break;
		case 'c': o.unbound_conf = optarg; break;
		case 't': o.timeout_ms = atoi(optarg); break;
		case 'b': budget = atoi(optarg); break;
		case 'i': ip = optarg; break;
		case 'h': helo = optarg; break;
		case 'm': from = optarg; break;
		default: spfq_usage();
		}
	}
	if (ip == NULL || optind != argc)
		spfq_usage();
	if ((d = dns_new(&o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "spfq: %s\n", err);
		return 1;
	}
	if ((s = chk_spf_new(d, "mx.mxw.test", err, sizeof(err))) == NULL) {
		fprintf(stderr, "spfq: %s\n", err);
		dns_free(d);
		return 1;
	}
	chk_spf_set_limits(s, budget, 0, 0);
	helo_id = from == NULL || *from == '\0';
	sender = helo_id ? xasprintf("postmaster@%s", helo != NULL ? helo : "")
	    : xstrdup(from);
	reason[0] = exp[0] = '\0';
	r = chk_spf_eval(s, ip, helo, sender, helo_id, reason, sizeof(reason),
	    exp, sizeof(exp));
	printf("%s\t", spfq_result(r));
	spfq_print(exp[0] != '\0' ? exp : "-");
	putchar('\t');
	spfq_print(reason);
	putchar('\n');
	free(sender);
	chk_spf_free(s);
	dns_free(d);
	return 0;
}
