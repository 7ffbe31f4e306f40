/*
 * dnsq - query DNS through mxwarden's dns module (test tool).
 *
 *   dnsq [-s server] [-c unbound.conf] [-t timeout_ms] [-x]
 *        [-n threads [-r rounds]] NAME TYPE [NAME TYPE ...]
 *
 * Without -n: each NAME TYPE is queried in turn and printed as
 *   query NAME TYPE
 *   status STATUS count N secure S
 *   rr TYPE [PREF] TEXT        (one per record, sorted; TEXT escaped \xHH)
 *   elapsed_ms MS
 * With -n: every pair is first queried once (printed as above, the
 * reference), then THREADS threads each run ROUNDS rounds over all pairs
 * at once, comparing every answer with the reference; prints
 *   concurrent threads T queries Q mismatches M
 * -x: NAME is an IP address; its reverse name is queried.
 * Exit: 0 done (-n: and no mismatch), 1 setup failure or mismatch, 2 usage.
 * Used by tests/integration/dns.sh against the test DNS server.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"
#include "util.h"

static const struct { const char *name; uint16_t type; } dnsq_types[] = {
	{ "A", DNS_T_A }, { "NS", DNS_T_NS }, { "CNAME", DNS_T_CNAME },
	{ "PTR", DNS_T_PTR }, { "MX", DNS_T_MX }, { "TXT", DNS_T_TXT },
	{ "AAAA", DNS_T_AAAA }, { "SPF", DNS_T_SPF },
};

struct dnsq_pair {
	char		 name[256];
	uint16_t	 type;
	char		*ref;		/* reference answer, rendered */
};

struct dnsq_run {
	struct dns		*d;
	struct dnsq_pair	*pairs;
	size_t			 npairs;
	int			 rounds;
	int			 mismatches;
	int			 queries;
	pthread_mutex_t		 mu;
};

static int
dnsq_type(const char *s, uint16_t *type)
{
	char *end;
	unsigned long v;

	for (size_t i = 0; i < ARRAY_LEN(dnsq_types); i++)
		if (strcasecmp(s, dnsq_types[i].name) == 0) {
			*type = dnsq_types[i].type;
			return 0;
		}
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v == 0 || v > 65535)
		return -1;
	*type = (uint16_t)v;
	return 0;
}

static const char *
dnsq_type_name(uint16_t type)
{
	for (size_t i = 0; i < ARRAY_LEN(dnsq_types); i++)
		if (dnsq_types[i].type == type)
			return dnsq_types[i].name;
	return "OTHER";
}

/* dnsq_rr_line - one record as "rr TYPE [PREF] TEXT"; caller frees. */
static char *
dnsq_rr_line(const struct dns_rr *rr)
{
	size_t cap = 32 + rr->textlen * 4, len;
	char *out = xmalloc(cap);

	len = (size_t)snprintf(out, cap, "rr %s ", dnsq_type_name(rr->type));
	if (rr->type == DNS_T_MX)
		len += (size_t)snprintf(out + len, cap - len, "%d ", rr->pref);
	for (size_t k = 0; k < rr->textlen; k++) {
		unsigned char c = (unsigned char)rr->text[k];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[len++] = (char)c;
		else
			len += (size_t)snprintf(out + len, cap - len, "\\x%02x",
			    c);
	}
	out[len] = '\0';
	return out;
}

static int
dnsq_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * dnsq_render - the answer as text (without timing), records sorted (a
 * resolver may rotate the order of an RRset); caller frees.
 */
static char *
dnsq_render(const struct dns_result *res)
{
	char **lines = xcalloc(res->count + 1, sizeof(*lines));
	size_t cap = 64, len;
	char *out = xmalloc(cap);

	len = (size_t)snprintf(out, cap, "status %s count %zu secure %d",
	    dns_status_name(res->status), res->count, res->secure);
	for (size_t i = 0; i < res->count; i++) {
		lines[i] = dnsq_rr_line(&res->rr[i]);
		cap += strlen(lines[i]) + 1;
	}
	qsort(lines, res->count, sizeof(*lines), dnsq_cmp);
	out = xrealloc(out, cap);
	for (size_t i = 0; i < res->count; i++) {
		len += (size_t)snprintf(out + len, cap - len, "\n%s",
		    lines[i]);
		free(lines[i]);
	}
	free(lines);
	return out;
}

static double
dnsq_ms(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static void *
dnsq_worker(void *arg)
{
	struct dnsq_run *run = arg;

	for (int r = 0; r < run->rounds; r++)
		for (size_t i = 0; i < run->npairs; i++) {
			struct dnsq_pair *p = &run->pairs[i];
			struct dns_result res;
			char *got;

			dns_query(run->d, p->name, p->type, &res);
			got = dnsq_render(&res);
			pthread_mutex_lock(&run->mu);
			run->queries++;
			if (strcmp(got, p->ref) != 0 &&
			    run->mismatches++ < 5)
				fprintf(stderr, "mismatch %s %s:\n%.300s\n"
				    "expected:\n%.300s\n", p->name,
				    dnsq_type_name(p->type), got, p->ref);
			pthread_mutex_unlock(&run->mu);
			free(got);
			dns_result_free(&res);
		}
	return NULL;
}

static int
dnsq_concurrent(struct dnsq_run *run, int nthreads)
{
	pthread_t *t = xcalloc((size_t)nthreads, sizeof(*t));
	int started = 0;

	pthread_mutex_init(&run->mu, NULL);
	for (; started < nthreads; started++)
		if (pthread_create(&t[started], NULL, dnsq_worker, run) != 0)
			break;
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&run->mu);
	free(t);
	printf("concurrent threads %d queries %d mismatches %d\n", started,
	    run->queries, run->mismatches);
	return started == nthreads && run->mismatches == 0 ? 0 : 1;
}

static void
dnsq_usage(void)
{
	fprintf(stderr, "usage: dnsq [-s server] [-c unbound.conf] "
	    "[-t timeout_ms] [-x] [-n threads [-r rounds]] NAME TYPE ...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct dns_opts opts = { .timeout_ms = 5000 };
	struct dnsq_run run = { .rounds = 10 };
	int c, reverse = 0, nthreads = 0, rc = 0;
	char err[512];

	log_init("dnsq", 1, getenv("DNSQ_DEBUG") ? LOG_LVL_DEBUG :
	    LOG_LVL_WARN);
	while ((c = getopt(argc, argv, "s:c:t:xn:r:")) != -1) {
		switch (c) {
		case 's': opts.server = optarg; break;
		case 'c': opts.unbound_conf = optarg; break;
		case 't': opts.timeout_ms = atoi(optarg); break;
		case 'x': reverse = 1; break;
		case 'n': nthreads = atoi(optarg); break;
		case 'r': run.rounds = atoi(optarg); break;
		default: dnsq_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2 || argc % 2 != 0 || nthreads < 0 || nthreads > 256 ||
	    run.rounds < 1 || run.rounds > 100000)
		dnsq_usage();
	run.npairs = (size_t)argc / 2;
	run.pairs = xcalloc(run.npairs, sizeof(*run.pairs));
	for (size_t i = 0; i < run.npairs; i++) {
		struct dnsq_pair *p = &run.pairs[i];

		if (dnsq_type(argv[2 * i + 1], &p->type) != 0)
			dnsq_usage();
		if (reverse ? dns_reverse_name(argv[2 * i], p->name,
		    sizeof(p->name)) : str_copy(p->name, argv[2 * i],
		    sizeof(p->name))) {
			fprintf(stderr, "dnsq: bad name %s\n", argv[2 * i]);
			exit(2);
		}
	}
	if ((run.d = dns_new(&opts, err, sizeof(err))) == NULL) {
		fprintf(stderr, "dnsq: %s\n", err);
		exit(1);
	}
	for (size_t i = 0; i < run.npairs; i++) {
		struct dnsq_pair *p = &run.pairs[i];
		struct dns_result res;
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		dns_query(run.d, p->name, p->type, &res);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		p->ref = dnsq_render(&res);
		printf("query %s %s\n%s\nelapsed_ms %.0f\n", p->name,
		    dnsq_type_name(p->type), p->ref, dnsq_ms(&t0, &t1));
		dns_result_free(&res);
	}
	fflush(stdout);
	if (nthreads > 0)
		rc = dnsq_concurrent(&run, nthreads);
	for (size_t i = 0; i < run.npairs; i++)
		free(run.pairs[i].ref);
	free(run.pairs);
	dns_free(run.d);
	return rc;
}
