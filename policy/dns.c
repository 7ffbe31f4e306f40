/*
 * dns.c - the resolver behind policy/dns.h: libunbound, and a static
 * in-memory table with the same semantics for unit tests.
 *
 * Called by every check that needs DNS (iprev, HELO, sender domain, the
 * SPF/DKIM/DMARC DNS hooks, DNSBL) through dns_query().
 *
 * Owns: one struct dns per process (created at start-up or reload, freed
 * by its creator after the last query) with its answer cache (see
 * dns_cache.h, implemented at the end of this file); each dns_result
 * (records, rdata and text) belongs to the caller until dns_result_free().
 *
 * Thread safety: dns_query() may be called from any number of threads at
 * once on one struct dns. The libunbound context is shared (one cache);
 * queries are sent with ub_resolve_async() and each caller waits for its
 * own answer with a hard deadline. Only one thread at a time reads the
 * libunbound pipe (poll + ub_process); libunbound runs the callbacks in
 * that thread, and they wake the other waiters through d->cv. A waiter
 * whose deadline passes cancels its query; the query state is
 * reference-counted so that a callback arriving at the same moment never
 * touches freed memory. Final answers are kept in the answer cache (its
 * own mutex), so a name asked again within its TTL (at most
 * DNS_CACHE_MAX_TTL) is answered without the round trip through
 * libunbound's worker.
 *
 * Security: everything in an answer is untrusted. rdata is decoded with
 * bounds checks on every octet; a malformed record makes the whole answer
 * DNS_MALFORMED; the number of records and the total decoded text are
 * capped (DNS_MAX_RR, DNS_MAX_TEXT in dns.h). No answer can end the
 * process.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <unbound.h>

#include "dns.h"
#include "dns_cache.h"
#include "log.h"
#include "util.h"

#define DNS_STATIC_TTL	300	/* TTL of every static record */
#define DNS_MAX_CHAIN	8	/* CNAME hops followed by the static table */
#define DNS_WIRE_MAX	65535	/* largest rdata */
#define DNS_CLASS_IN	1

enum dns_kind { DNS_KIND_STATIC, DNS_KIND_UNBOUND };

/* One entry of the static table, rdata already in wire form. */
struct dns_srec {
	char		*name;		/* lower-case, no trailing dot */
	uint16_t	 type;
	enum dns_status	 status;
	unsigned char	*rdata;
	size_t		 rdlen;
};

struct dns {
	enum dns_kind	 kind;
	/* static */
	struct dns_srec	*tab;
	size_t		 ntab;
	/* libunbound */
	struct ub_ctx	*ub;
	int		 timeout_ms;
	pthread_mutex_t	 mu;		/* protects processing and every dns_ubq */
	pthread_cond_t	 cv;		/* an answer arrived / reader left */
	int		 processing;	/* a thread is in poll/ub_process */
	struct dns_cache *cache;	/* final answers (libunbound only) */
};

/* ---------------------------------------------------------------- names */

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:		return "ok";
	case DNS_NODATA:	return "nodata";
	case DNS_NXDOMAIN:	return "nxdomain";
	case DNS_SERVFAIL:	return "servfail";
	case DNS_TIMEOUT:	return "timeout";
	case DNS_BADNAME:	return "badname";
	case DNS_MALFORMED:	return "malformed";
	}
	return "unknown";
}

/* An octet we accept in a query name: printable, not space, not the
 * presentation-format escape character. */
static int
name_octet_ok(unsigned char c)
{
	/* Any octet but controls may stand in a label (RFC 2181 §11);
	 * the unusual ones are sent escaped (ub_escape_name). */
	return c >= 0x20 && c != 0x7f;
}

/* ub_escape_name - the presentation form libunbound parses: octets
 * other than letters, digits, '-', '_' and the dots become \DDD. */
static int
ub_escape_name(const char *name, char *out, size_t outlen)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.';
		if (o + 5 >= outlen)
			return -1;
		if (plain)
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\%03u", *p);
	}
	out[o] = '\0';
	return 0;
}

int
dns_valid_name(const char *name)
{
	size_t len, label = 0;

	if (name == NULL)
		return 0;
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!name_octet_ok(c) || ++label > 63)
			return 0;
	}
	return label > 0;
}

int
dns_reverse_name(const char *ip, char *out, size_t outlen)
{
	unsigned char a[16];
	const unsigned char *v4 = NULL;
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (ip == NULL || outlen == 0)
		return -1;
	if (inet_pton(AF_INET, ip, a) == 1)
		v4 = a;
	else if (inet_pton(AF_INET6, ip, a) != 1)
		return -1;
	else if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a))
		v4 = a + 12;
	if (v4 != NULL)
		return str_fmt(out, outlen, "%u.%u.%u.%u.in-addr.arpa",
		    v4[3], v4[2], v4[1], v4[0]);
	if (outlen < 32 * 2 + sizeof("ip6.arpa"))
		return -1;
	for (int i = 15; i >= 0; i--) {
		out[o++] = hex[a[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[a[i] >> 4];
		out[o++] = '.';
	}
	memcpy(out + o, "ip6.arpa", sizeof("ip6.arpa"));
	return 0;
}

/* name_canon - copy name lower-cased without its trailing dot into out
 * (at least 256 octets). -1 if it is not a valid name. */
static int
name_canon(const char *name, char *out, size_t outlen)
{
	size_t len;

	if (!dns_valid_name(name) || str_copy(out, name, outlen) != 0)
		return -1;
	len = strlen(out);
	if (out[len - 1] == '.')
		out[len - 1] = '\0';
	str_lower(out);
	return 0;
}

/* name_to_wire - encode a valid name, or "." / "" for the root, into
 * uncompressed wire form. Returns the length, or -1. */
static int
name_to_wire(const char *name, unsigned char *out, size_t outlen)
{
	size_t o = 0;
	const char *p = name, *dot;

	if (strcmp(name, ".") != 0 && *name != '\0' && !dns_valid_name(name))
		return -1;
	while (*p != '\0' && strcmp(p, ".") != 0) {
		size_t l;

		dot = strchr(p, '.');
		l = dot ? (size_t)(dot - p) : strlen(p);
		if (o + 1 + l >= outlen)
			return -1;
		out[o++] = (unsigned char)l;
		memcpy(out + o, p, l);
		o += l;
		p += l + (dot != NULL);
	}
	if (o >= outlen)
		return -1;
	out[o++] = 0;
	return (int)o;
}

/*
 * wire_to_name - decode an uncompressed wire name at rd[*off] (rdata of
 * length rdlen) into presentation form, lower-case, no trailing dot ("" for
 * the root). Octets that are not plain (dots in a label, '\\', non-printing)
 * are written as \DDD. Advances *off. -1 on a malformed or too long name.
 */
static int
wire_to_name(const unsigned char *rd, size_t rdlen, size_t *off, char *out,
    size_t outlen)
{
	size_t i = *off, o = 0, wire = 0;

	for (;;) {
		unsigned l;

		if (i >= rdlen)
			return -1;
		l = rd[i++];
		wire += l + 1;
		if (wire > 255 || l > 63)	/* also rejects compression */
			return -1;
		if (l == 0)
			break;
		if (i + l > rdlen)
			return -1;
		if (o > 0 && o + 1 < outlen)
			out[o++] = '.';
		for (unsigned k = 0; k < l; k++) {
			unsigned char c = (unsigned char)tolower(rd[i + k]);

			if (c > 0x20 && c < 0x7f && c != '.' && c != '\\') {
				if (o + 1 >= outlen)
					return -1;
				out[o++] = (char)c;
			} else {
				if (o + 4 >= outlen)
					return -1;
				snprintf(out + o, 5, "\\%03u", c);
				o += 4;
			}
		}
		i += l;
	}
	out[o] = '\0';
	*off = i;
	return 0;
}

/* ------------------------------------------------------- rdata decoding */

static int
decode_txt(const unsigned char *rd, size_t rdlen, struct dns_rr *rr)
{
	size_t i = 0, o = 0;

	if (rdlen == 0)
		return -1;
	rr->text = xmalloc(rdlen + 1);
	while (i < rdlen) {
		size_t l = rd[i++];

		if (i + l > rdlen)
			return -1;	/* caller frees rr->text */
		memcpy(rr->text + o, rd + i, l);
		o += l;
		i += l;
	}
	rr->text[o] = '\0';
	rr->textlen = o;
	return 0;
}

int
dns_rr_decode(uint16_t type, const unsigned char *rd, size_t rdlen,
    struct dns_rr *rr)
{
	char buf[1024];
	size_t off = 0;

	rr->text = NULL;
	rr->textlen = 0;
	rr->pref = 0;
	switch (type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		if (rdlen != (type == DNS_T_A ? 4u : 16u) ||
		    inet_ntop(type == DNS_T_A ? AF_INET : AF_INET6, rd, buf,
		    sizeof(buf)) == NULL)
			return -1;
		break;
	case DNS_T_MX:
		if (rdlen < 3)
			return -1;
		rr->pref = rd[0] << 8 | rd[1];
		off = 2;
		/* FALLTHROUGH */
	case DNS_T_PTR:
	case DNS_T_CNAME:
	case DNS_T_NS:
		if (wire_to_name(rd, rdlen, &off, buf, sizeof(buf)) != 0 ||
		    off != rdlen)
			return -1;
		break;
	case DNS_T_TXT:
	case DNS_T_SPF:
		if (decode_txt(rd, rdlen, rr) == 0)
			return 0;
		free(rr->text);
		rr->text = NULL;
		return -1;
	default:
		/* Other types: no decoded form, only rdata. */
		buf[0] = '\0';
		break;
	}
	rr->text = xstrdup(buf);
	rr->textlen = strlen(buf);
	return 0;
}

/* result_clear - free the records, leave status and count at "none". */
static void
result_clear(struct dns_result *res)
{
	for (size_t i = 0; i < res->count; i++) {
		free(res->rr[i].rdata);
		free(res->rr[i].text);
	}
	free(res->rr);
	res->rr = NULL;
	res->count = 0;
}

void
dns_result_free(struct dns_result *res)
{
	if (res == NULL)
		return;
	result_clear(res);
	res->secure = 0;
}

/*
 * result_fill - decode n rdata items of one type into res. Sets
 * res->status to DNS_OK, DNS_NODATA (n == 0) or DNS_MALFORMED (an
 * undecodable record, or over DNS_MAX_RR / DNS_MAX_TEXT).
 */
static void
result_fill(struct dns_result *res, uint16_t type, uint32_t ttl,
    const unsigned char *const *rdata, const size_t *rdlen, size_t n)
{
	size_t total = 0;

	res->status = n == 0 ? DNS_NODATA : DNS_OK;
	if (n == 0)
		return;
	if (n > DNS_MAX_RR) {
		res->status = DNS_MALFORMED;
		return;
	}
	res->rr = xcalloc(n, sizeof(*res->rr));
	for (size_t i = 0; i < n; i++) {
		struct dns_rr *rr = &res->rr[i];

		if (dns_rr_decode(type, rdata[i], rdlen[i], rr) != 0 ||
		    (total += rr->textlen) > DNS_MAX_TEXT) {
			res->count = i + 1;
			result_clear(res);
			res->status = DNS_MALFORMED;
			return;
		}
		rr->type = type;
		rr->ttl = ttl;
		rr->rdlen = rdlen[i];
		rr->rdata = xmalloc(rdlen[i] ? rdlen[i] : 1);
		memcpy(rr->rdata, rdata[i], rdlen[i]);
		res->count = i + 1;
	}
}

/* ------------------------------------------------- static table: encode */

/* hexval - value of a hex digit, or -1. */
static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* encode_generic - RFC 3597 "\# LEN HEX..." into out. */
static int
encode_generic(const char *s, unsigned char *out, size_t *len)
{
	char *end;
	unsigned long n;
	size_t o = 0;

	errno = 0;
	n = strtoul(s + 2, &end, 10);
	if (errno != 0 || end == s + 2 || n > DNS_WIRE_MAX)
		return -1;
	for (s = end; *s != '\0'; s++) {
		int hi, lo;

		if (isspace((unsigned char)*s))
			continue;
		if ((hi = hexval(s[0])) < 0 || (lo = hexval(s[1])) < 0 ||
		    o >= n)
			return -1;
		out[o++] = (unsigned char)(hi << 4 | lo);
		s++;
	}
	if (o != n)
		return -1;
	*len = o;
	return 0;
}

/*
 * encode_txt - TXT data: either plain text (one string, cut into
 * character-strings of 255 octets), or, when it starts with '"', a
 * sequence of quoted strings separated by white space, with \" \\ and
 * \DDD escapes inside the quotes.
 */
static int
encode_txt(const char *s, unsigned char *out, size_t *len)
{
	size_t o = 0;

	if (*s != '"') {
		size_t l = strlen(s), i = 0;

		do {
			size_t part = l - i > 255 ? 255 : l - i;

			if (o + 1 + part > DNS_WIRE_MAX)
				return -1;
			out[o++] = (unsigned char)part;
			memcpy(out + o, s + i, part);
			o += part;
			i += part;
		} while (i < l);
		*len = o;
		return 0;
	}
	while (*s != '\0') {
		size_t lenpos = o++, l = 0;

		if (*s++ != '"' || lenpos >= DNS_WIRE_MAX)
			return -1;
		while (*s != '"') {
			unsigned c = (unsigned char)*s++;

			if (c == '\0')
				return -1;
			if (c == '\\' && isdigit((unsigned char)s[0]) &&
			    isdigit((unsigned char)s[1]) &&
			    isdigit((unsigned char)s[2])) {
				c = (unsigned)((s[0] - '0') * 100 +
				    (s[1] - '0') * 10 + (s[2] - '0'));
				s += 3;
				if (c > 255)
					return -1;
			} else if (c == '\\') {
				if (*s == '\0')
					return -1;
				c = (unsigned char)*s++;
			}
			if (++l > 255 || o >= DNS_WIRE_MAX)
				return -1;
			out[o++] = (unsigned char)c;
		}
		s++;
		out[lenpos] = (unsigned char)l;
		while (isspace((unsigned char)*s))
			s++;
	}
	*len = o;
	return 0;
}

/* encode_rdata - presentation form of one static record into wire form.
 * out holds DNS_WIRE_MAX octets. 0, or -1 if data does not parse. */
static int
encode_rdata(uint16_t type, const char *data, unsigned char *out,
    size_t *len)
{
	char *end;
	unsigned long pref;
	int n;

	if (data == NULL)
		return -1;
	if (data[0] == '\\' && data[1] == '#')
		return encode_generic(data, out, len);
	switch (type) {
	case DNS_T_A:
		*len = 4;
		return inet_pton(AF_INET, data, out) == 1 ? 0 : -1;
	case DNS_T_AAAA:
		*len = 16;
		return inet_pton(AF_INET6, data, out) == 1 ? 0 : -1;
	case DNS_T_PTR:
	case DNS_T_CNAME:
	case DNS_T_NS:
		n = name_to_wire(data, out, DNS_WIRE_MAX);
		break;
	case DNS_T_MX:
		errno = 0;
		pref = strtoul(data, &end, 10);
		if (errno != 0 || end == data || pref > 65535 ||
		    !isspace((unsigned char)*end))
			return -1;
		while (isspace((unsigned char)*end))
			end++;
		out[0] = (unsigned char)(pref >> 8);
		out[1] = (unsigned char)pref;
		n = name_to_wire(end, out + 2, DNS_WIRE_MAX - 2);
		if (n >= 0)
			n += 2;
		break;
	case DNS_T_TXT:
	case DNS_T_SPF:
		return encode_txt(data, out, len);
	default:
		return -1;	/* other types: use the \# form */
	}
	if (n < 0)
		return -1;
	*len = (size_t)n;
	return 0;
}

struct dns *
dns_new_static(const struct dns_static_rr *table, size_t n)
{
	struct dns *d = xcalloc(1, sizeof(*d));
	unsigned char *wire = xmalloc(DNS_WIRE_MAX);
	char name[256];

	d->kind = DNS_KIND_STATIC;
	d->tab = xcalloc(n, sizeof(*d->tab));
	for (size_t i = 0; i < n; i++) {
		const struct dns_static_rr *e = &table[i];
		struct dns_srec *s = &d->tab[i];
		size_t len = 0;

		if (name_canon(e->name, name, sizeof(name)) != 0) {
			log_err("dns static table entry %zu: bad name \"%s\"",
			    i, e->name ? e->name : "(null)");
			goto fail;
		}
		d->ntab = i + 1;
		s->name = xstrdup(name);
		s->type = e->type;
		s->status = e->status;
		if (e->status != DNS_OK)
			continue;
		if (encode_rdata(e->type, e->data, wire, &len) != 0) {
			log_err("dns static table entry %zu: %s type %u: bad "
			    "data \"%s\"", i, name, e->type,
			    e->data ? e->data : "(null)");
			goto fail;
		}
		s->rdata = xmalloc(len ? len : 1);
		memcpy(s->rdata, wire, len);
		s->rdlen = len;
	}
	free(wire);
	return d;
fail:
	free(wire);
	dns_free(d);
	return NULL;
}

/* --------------------------------------------------- static table: query */

/* static_lookup_name - the answer for exactly this name (no CNAME). Sets
 * *cname to the index of a CNAME record at the name, or -1. */
static enum dns_status
static_lookup_name(const struct dns *d, const char *name, uint16_t type,
    struct dns_result *res, long *cname)
{
	const unsigned char **rd = xcalloc(d->ntab, sizeof(*rd));
	size_t *rl = xcalloc(d->ntab, sizeof(*rl)), n = 0;
	int exists = 0;

	*cname = -1;
	for (size_t i = 0; i < d->ntab; i++) {
		const struct dns_srec *s = &d->tab[i];

		if (strcmp(s->name, name) != 0) {
			/* an empty non-terminal exists too */
			if (str_is_subdomain(s->name, name))
				exists = 1;
			continue;
		}
		exists = 1;
		if (s->status != DNS_OK) {
			if (s->type == 0 || s->type == type) {
				res->status = s->status;
				n = 0;
				goto out;
			}
			continue;
		}
		if (s->type == type) {
			rd[n] = s->rdata;
			rl[n++] = s->rdlen;
		} else if (s->type == DNS_T_CNAME && *cname < 0) {
			*cname = (long)i;
		}
	}
	if (n > 0)
		*cname = -1;
	result_fill(res, type, DNS_STATIC_TTL, rd, rl, n);
	if (n == 0 && !exists)
		res->status = DNS_NXDOMAIN;
out:
	free(rd);
	free(rl);
	return res->status;
}

static enum dns_status
static_query(const struct dns *d, const char *qname, uint16_t type,
    struct dns_result *res)
{
	char name[1024];
	long cname;

	if (name_canon(qname, name, sizeof(name)) != 0)
		return res->status = DNS_BADNAME;
	for (int hop = 0; hop <= DNS_MAX_CHAIN; hop++) {
		const struct dns_srec *s;
		size_t off = 0;

		if (static_lookup_name(d, name, type, res, &cname) !=
		    DNS_NODATA || cname < 0)
			return res->status;
		/* follow the CNAME, as a recursive resolver does */
		s = &d->tab[cname];
		if (wire_to_name(s->rdata, s->rdlen, &off, name,
		    sizeof(name)) != 0)
			return res->status = DNS_MALFORMED;
	}
	return res->status = DNS_SERVFAIL;	/* CNAME loop */
}

/* ------------------------------------------------------------ libunbound */

/*
 * parse_server - "IP", "IP:port", "[IPv6]:port" or a bare IPv6 address
 * into libunbound's "IP@port" form. *loopback is set for 127/8 and ::1.
 */
static int
parse_server(const char *s, char *out, size_t outlen, int *loopback,
    char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL, *colon = strchr(s, ':'), *orig = s;
	unsigned char a[16];
	size_t hl;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || (rb[1] != '\0' && rb[1] != ':'))
			goto bad;
		hl = (size_t)(rb - s - 1);
		s++;
		port = rb[1] == ':' ? rb + 2 : NULL;
	} else if (colon != NULL && strchr(colon + 1, ':') == NULL) {
		hl = (size_t)(colon - s);
		port = colon + 1;
	} else {
		hl = strlen(s);
	}
	if (hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, a) == 1) {
		*loopback = a[0] == 127;
	} else if (inet_pton(AF_INET6, host, a) == 1) {
		static const unsigned char one[16] = { [15] = 1 };

		*loopback = memcmp(a, one, 16) == 0 ||
		    (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a) && a[12] == 127);
	} else {
		goto bad;
	}
	if (port != NULL) {
		char *end;
		unsigned long p;

		errno = 0;
		p = strtoul(port, &end, 10);
		if (errno != 0 || *port == '\0' || *end != '\0' ||
		    !isdigit((unsigned char)*port) || p == 0 || p > 65535)
			goto bad;
		return str_fmt(out, outlen, "%s@%lu", host, p);
	}
	return str_copy(out, host, outlen);
bad:
	str_fmt(err, errlen, "dns server \"%s\": not an IP address with an "
	    "optional port (IP, IP:port, [IPv6]:port)", orig);
	return -1;
}

/* ub_set - ub_ctx_set_option with a reason on failure. */
static int
ub_set(struct ub_ctx *ub, const char *opt, const char *val, char *err,
    size_t errlen)
{
	int r = ub_ctx_set_option(ub, opt, val);

	if (r != 0)
		str_fmt(err, errlen, "libunbound option %s %s: %s", opt, val,
		    ub_strerror(r));
	return r ? -1 : 0;
}

/* ub_setup - apply the options to a fresh context. */
static int
ub_setup(struct ub_ctx *ub, const struct dns_opts *opts, char *err,
    size_t errlen)
{
	char fwd[INET6_ADDRSTRLEN + 16];
	int r, loopback = 0;
	int have_server = opts->server != NULL && opts->server[0] != '\0';

	if (have_server && parse_server(opts->server, fwd, sizeof(fwd),
	    &loopback, err, errlen) != 0)
		return -1;
	if ((r = ub_ctx_async(ub, 1)) != 0) {
		str_fmt(err, errlen, "libunbound threads: %s", ub_strerror(r));
		return -1;
	}
	if (opts->unbound_conf != NULL && opts->unbound_conf[0] != '\0') {
		if (access(opts->unbound_conf, R_OK) != 0) {
			str_fmt(err, errlen, "dns unbound config %s: %s",
			    opts->unbound_conf, strerror(errno));
			return -1;
		}
		if ((r = ub_ctx_config(ub, opts->unbound_conf)) != 0) {
			str_fmt(err, errlen, "dns unbound config %s: %s",
			    opts->unbound_conf, ub_strerror(r));
			return -1;
		}
	}
	if (have_server) {
		if (loopback && ub_set(ub, "do-not-query-localhost:", "no",
		    err, errlen) != 0)
			return -1;
		if ((r = ub_ctx_set_fwd(ub, fwd)) != 0) {
			str_fmt(err, errlen, "dns server %s: %s", opts->server,
			    ub_strerror(r));
			return -1;
		}
	} else if (opts->unbound_conf == NULL || opts->unbound_conf[0] == '\0') {
		/* the system's servers; a local caching resolver on
		 * 127.0.0.1 is common, so allow loopback */
		if (ub_set(ub, "do-not-query-localhost:", "no", err,
		    errlen) != 0)
			return -1;
		if ((r = ub_ctx_resolvconf(ub, NULL)) != 0) {
			str_fmt(err, errlen, "dns: reading resolv.conf: %s",
			    ub_strerror(r));
			return -1;
		}
	}
	return 0;
}

struct dns *
dns_new(const struct dns_opts *opts, char *err, size_t errlen)
{
	struct dns *d;
	pthread_condattr_t ca;

	if (opts == NULL || opts->timeout_ms <= 0) {
		str_fmt(err, errlen, "dns timeout must be > 0 ms");
		return NULL;
	}
	d = xcalloc(1, sizeof(*d));
	d->kind = DNS_KIND_UNBOUND;
	d->timeout_ms = opts->timeout_ms;
	if ((d->ub = ub_ctx_create()) == NULL) {
		str_fmt(err, errlen, "libunbound: cannot create a context");
		free(d);
		return NULL;
	}
	if (ub_setup(d->ub, opts, err, errlen) != 0) {
		ub_ctx_delete(d->ub);
		free(d);
		return NULL;
	}
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);
	d->cache = dns_cache_new();
	return d;
}

/* One outstanding libunbound query. refs: the waiter, and the callback
 * until it has run or the query was cancelled. Guarded by d->mu. */
struct dns_ubq {
	struct dns		*d;
	int			 refs;
	int			 done;
	int			 err;
	struct ub_result	*res;
};

static void
ubq_unref(struct dns_ubq *q)
{
	if (--q->refs > 0)
		return;
	if (q->res != NULL)
		ub_resolve_free(q->res);
	free(q);
}

/* ubq_callback - run by libunbound inside ub_process(), in whichever
 * thread is the reader; d->mu is not held by that thread then. */
static void
ubq_callback(void *arg, int err, struct ub_result *r)
{
	struct dns_ubq *q = arg;
	struct dns *d = q->d;

	pthread_mutex_lock(&d->mu);
	q->err = err;
	q->res = r;
	q->done = 1;
	pthread_cond_broadcast(&d->cv);
	ubq_unref(q);
	pthread_mutex_unlock(&d->mu);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * ubq_wait - with d->mu held, wait until q is answered or the deadline
 * passes. At most one thread at a time polls the libunbound pipe and
 * calls ub_process() (without d->mu); the others sleep on d->cv.
 */
static void
ubq_wait(struct dns *d, struct dns_ubq *q, int64_t deadline)
{
	int64_t left;

	while (!q->done && (left = deadline - now_ms()) > 0) {
		if (d->processing) {
			struct timespec ts = {
				.tv_sec = (time_t)(deadline / 1000),
				.tv_nsec = (long)(deadline % 1000) * 1000000,
			};

			pthread_cond_timedwait(&d->cv, &d->mu, &ts);
			continue;
		}
		d->processing = 1;
		pthread_mutex_unlock(&d->mu);
		{
			struct pollfd pfd = { .fd = ub_fd(d->ub),
			    .events = POLLIN };

			if (poll(&pfd, 1, left > INT_MAX ? INT_MAX :
			    (int)left) > 0)
				ub_process(d->ub);
		}
		pthread_mutex_lock(&d->mu);
		d->processing = 0;
		/* let another waiter become the reader */
		pthread_cond_broadcast(&d->cv);
	}
}

/* ub_map - the status of a libunbound answer; fills res, and *ttl with
 * the answer's TTL (0 when it must not be kept). */
static void
ub_map(int err, struct ub_result *r, uint16_t type, struct dns_result *res,
    uint32_t *ttl)
{
	size_t n = 0;

	*ttl = 0;
	if (err != 0 || r == NULL) {
		log_debug("dns: libunbound: %s", ub_strerror(err));
		res->status = DNS_SERVFAIL;
		return;
	}
	if (r->bogus) {
		log_debug("dns: %s: DNSSEC bogus: %s", r->qname,
		    r->why_bogus ? r->why_bogus : "?");
		res->status = DNS_SERVFAIL;
		return;
	}
	if (r->rcode == 0 || r->rcode == 3)
		*ttl = r->ttl < 0 ? 0 : (uint32_t)r->ttl;
	switch (r->rcode) {
	case 0:
		break;
	case 3:
		res->status = DNS_NXDOMAIN;
		return;
	default:
		res->status = DNS_SERVFAIL;
		return;
	}
	res->secure = r->secure;
	if (r->havedata)
		while (r->data[n] != NULL)
			n++;
	if (n > DNS_MAX_RR) {
		res->status = DNS_MALFORMED;
		return;
	}
	{
		const unsigned char *rd[DNS_MAX_RR];
		size_t rl[DNS_MAX_RR];

		for (size_t i = 0; i < n; i++) {
			rd[i] = (const unsigned char *)r->data[i];
			rl[i] = r->len[i] < 0 ? 0 : (size_t)r->len[i];
		}
		result_fill(res, type, r->ttl < 0 ? 0 : (uint32_t)r->ttl,
		    rd, rl, n);
	}
}

static enum dns_status
ub_query(struct dns *d, const char *name, uint16_t type,
    struct dns_result *res)
{
	struct dns_ubq *q;
	int64_t deadline = now_ms() + d->timeout_ms;
	uint32_t ttl = 0;
	int id = 0, r;

	char wire[1100];

	if (!dns_valid_name(name) || ub_escape_name(name, wire, sizeof(wire)) != 0)
		return res->status = DNS_BADNAME;
	if (dns_cache_get(d->cache, name, type, deadline - d->timeout_ms, res))
		return res->status;
	q = xcalloc(1, sizeof(*q));
	q->d = d;
	q->refs = 2;
	r = ub_resolve_async(d->ub, wire, type, DNS_CLASS_IN, q, ubq_callback,
	    &id);
	if (r != 0) {
		log_warn("dns: %s/%u: cannot start query: %s", name, type,
		    ub_strerror(r));
		free(q);
		return res->status = DNS_SERVFAIL;
	}
	pthread_mutex_lock(&d->mu);
	ubq_wait(d, q, deadline);
	if (!q->done) {
		/* ub_cancel takes libunbound's lock, which the reader holds
		 * while it may wait for d->mu: never call it under d->mu */
		pthread_mutex_unlock(&d->mu);
		r = ub_cancel(d->ub, id);
		pthread_mutex_lock(&d->mu);
		if (r == 0)
			q->refs--;	/* the callback will never run */
	}
	if (q->done)
		ub_map(q->err, q->res, type, res, &ttl);
	else
		res->status = DNS_TIMEOUT;
	ubq_unref(q);
	pthread_mutex_unlock(&d->mu);
	dns_cache_put(d->cache, name, type, now_ms(), ttl, res);
	return res->status;
}

/* ------------------------------------------------------------- common */

enum dns_status
dns_query(struct dns *d, const char *name, uint16_t type,
    struct dns_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = DNS_SERVFAIL;
	if (d == NULL || name == NULL)
		return res->status = DNS_BADNAME;
	if (d->kind == DNS_KIND_STATIC)
		return static_query(d, name, type, res);
	return ub_query(d, name, type, res);
}

void
dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	if (d->kind == DNS_KIND_UNBOUND) {
		ub_ctx_delete(d->ub);
		dns_cache_free(d->cache);
		pthread_cond_destroy(&d->cv);
		pthread_mutex_destroy(&d->mu);
	}
	for (size_t i = 0; i < d->ntab; i++) {
		free(d->tab[i].name);
		free(d->tab[i].rdata);
	}
	free(d->tab);
	free(d);
}

/* ------------------------------------------------------- answer cache */

/*
 * The answer cache of dns_cache.h, in front of libunbound: DNS_CACHE_SLOTS
 * slots, each with a copy of one answer; a slot is overwritten by the
 * next answer hashed to it. One mutex guards every slot, held only for a
 * lookup with its copy or for a replacement. The copies handed out belong
 * to the caller.
 */
#define DNS_CACHE_NAME_MAX	256

struct dns_cache_slot {
	char			 name[DNS_CACHE_NAME_MAX];	/* "" = empty */
	uint16_t		 type;
	int64_t			 stored_ms;
	int64_t			 expires_ms;
	struct dns_result	 res;
};

struct dns_cache {
	pthread_mutex_t		 mu;
	struct dns_cache_slot	 slot[DNS_CACHE_SLOTS];
};

struct dns_cache *
dns_cache_new(void)
{
	struct dns_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->mu, NULL);
	return c;
}

void
dns_cache_free(struct dns_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < DNS_CACHE_SLOTS; i++)
		dns_result_free(&c->slot[i].res);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* slot_of - FNV-1a over the lower-cased name and the type. */
static struct dns_cache_slot *
slot_of(struct dns_cache *c, const char *name, uint16_t type)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ (uint32_t)tolower(*p)) * 16777619u;
	h = (h ^ type) * 16777619u;
	return &c->slot[h % DNS_CACHE_SLOTS];
}

/* result_copy - a deep copy of src into dst (dst overwritten). */
static void
result_copy(struct dns_result *dst, const struct dns_result *src)
{
	*dst = *src;
	dst->rr = NULL;
	if (src->count == 0)
		return;
	dst->rr = xcalloc(src->count, sizeof(*dst->rr));
	for (size_t i = 0; i < src->count; i++) {
		const struct dns_rr *s = &src->rr[i];
		struct dns_rr *d = &dst->rr[i];

		*d = *s;
		d->rdata = xmalloc(s->rdlen ? s->rdlen : 1);
		memcpy(d->rdata, s->rdata, s->rdlen);
		d->text = xmalloc(s->textlen + 1);
		memcpy(d->text, s->text, s->textlen + 1);
	}
}

int
dns_cache_get(struct dns_cache *c, const char *name, uint16_t type,
    int64_t now_ms, struct dns_result *res)
{
	struct dns_cache_slot *s;
	int hit = 0;

	if (c == NULL)
		return 0;
	s = slot_of(c, name, type);
	pthread_mutex_lock(&c->mu);
	if (s->name[0] != '\0' && s->type == type && now_ms < s->expires_ms &&
	    strcasecmp(s->name, name) == 0) {
		/* the TTLs count down while kept, as in libunbound's cache */
		uint32_t age = (uint32_t)((now_ms - s->stored_ms) / 1000);

		result_copy(res, &s->res);
		for (size_t i = 0; i < res->count; i++)
			res->rr[i].ttl = res->rr[i].ttl > age ?
			    res->rr[i].ttl - age : 0;
		hit = 1;
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

/* result_bytes - what a copy of res holds, rdata and text. */
static size_t
result_bytes(const struct dns_result *res)
{
	size_t n = 0;

	for (size_t i = 0; i < res->count; i++)
		n += res->rr[i].rdlen + res->rr[i].textlen;
	return n;
}

void
dns_cache_put(struct dns_cache *c, const char *name, uint16_t type,
    int64_t now_ms, uint32_t ttl, const struct dns_result *res)
{
	struct dns_cache_slot *s;
	struct dns_result old;

	if (c == NULL || ttl == 0 || strlen(name) >= DNS_CACHE_NAME_MAX)
		return;
	if (res->status != DNS_OK && res->status != DNS_NODATA &&
	    res->status != DNS_NXDOMAIN)
		return;
	if ((res->status == DNS_OK) != (res->count > 0) ||
	    result_bytes(res) > DNS_CACHE_MAX_BYTES)
		return;
	if (ttl > DNS_CACHE_MAX_TTL)
		ttl = DNS_CACHE_MAX_TTL;
	s = slot_of(c, name, type);
	pthread_mutex_lock(&c->mu);
	old = s->res;
	result_copy(&s->res, res);
	str_copy(s->name, name, sizeof(s->name));
	s->type = type;
	s->stored_ms = now_ms;
	s->expires_ms = now_ms + (int64_t)ttl * 1000;
	pthread_mutex_unlock(&c->mu);
	dns_result_free(&old);
}
