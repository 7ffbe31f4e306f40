/*
 * dns.h - the one resolver of mxwarden.
 *
 * Every DNS query of every check (iprev, HELO, sender domain, SPF through
 * our libspf2 DNS layer, DKIM keys, DMARC records, later DNSBL) goes
 * through dns_query(). One struct dns per process holds one shared cache;
 * it is safe to call dns_query() from many threads at once.
 *
 * A query has a hard per-query timeout. Outcomes are a closed set that
 * the checks map to their own results:
 *   DNS_OK        the name has records of the type (count > 0)
 *   DNS_NODATA    the name exists, no records of the type
 *   DNS_NXDOMAIN  the name does not exist
 *   DNS_SERVFAIL  the server answered with an error (SERVFAIL, REFUSED..)
 *   DNS_TIMEOUT   no answer within the timeout
 *   DNS_BADNAME   the name is not a valid DNS name (never sent)
 *   DNS_MALFORMED an answer that could not be parsed
 * Typically NXDOMAIN/NODATA -> "none", SERVFAIL/TIMEOUT -> "temperror".
 *
 * A second implementation, dns_new_static(), answers from a table in
 * memory with the same semantics; unit tests of the checks use it.
 */
#ifndef MXW_DNS_H
#define MXW_DNS_H

#include <stddef.h>
#include <stdint.h>

/* RR types used by mxwarden (values are the IANA numbers). */
#define DNS_T_A		1
#define DNS_T_NS	2
#define DNS_T_CNAME	5
#define DNS_T_PTR	12
#define DNS_T_MX	15
#define DNS_T_TXT	16
#define DNS_T_AAAA	28
#define DNS_T_SPF	99

enum dns_status {
	DNS_OK,
	DNS_NODATA,
	DNS_NXDOMAIN,
	DNS_SERVFAIL,
	DNS_TIMEOUT,
	DNS_BADNAME,
	DNS_MALFORMED,
};

/*
 * One resource record of the answer, in two forms: raw rdata as on the
 * wire, and a decoded text:
 *   A, AAAA      the address in presentation form ("192.0.2.1", "2001:db8::1")
 *   PTR, CNAME,
 *   NS           the name, lower-case, without the trailing dot
 *   MX           the exchange name as above ("" for a null MX "."), and
 *                pref set to the preference
 *   TXT, SPF     the character-strings concatenated without separators;
 *                a string containing NUL is kept with its NUL (use len)
 */
struct dns_rr {
	uint16_t	 type;
	uint32_t	 ttl;
	unsigned char	*rdata;
	size_t		 rdlen;
	char		*text;		/* NUL-terminated decoded form */
	size_t		 textlen;	/* length of text (TXT may hold NULs) */
	int		 pref;		/* MX only */
};

/*
 * Bounds on what one answer may hold. An answer with more than
 * DNS_MAX_RR records of the asked type, or whose decoded text adds up to
 * more than DNS_MAX_TEXT octets, is DNS_MALFORMED with no records (it is
 * not truncated: a check that saw only part of an RRset, e.g. SPF's "one
 * v=spf1 record", could reach a wrong answer instead of an error).
 */
#define DNS_MAX_RR	256
#define DNS_MAX_TEXT	65536

struct dns_result {
	enum dns_status	 status;
	int		 secure;	/* DNSSEC-validated (0 when no trust anchor) */
	size_t		 count;		/* records of the asked type */
	struct dns_rr	*rr;
};

struct dns_opts {
	const char	*server;	/* "IP", "IP:port", "[IPv6]:port"; NULL
					 * or "" = the system resolver's servers */
	int		 timeout_ms;	/* per query; > 0 */
	const char	*unbound_conf;	/* optional libunbound config file */
};

struct dns;

/*
 * dns_new - the libunbound-backed resolver. Returns NULL and a reason in
 * err on a bad option (unparsable server address, unreadable config).
 * With a server, every query is forwarded to it (loopback allowed). With
 * only unbound_conf, the file decides (forward-zone / stub-zone ...; else
 * libunbound recurses from the root). With neither, the servers of
 * /etc/resolv.conf are used. unbound_conf is applied before the server,
 * so it may add local-zone, stub-zone, trust anchors and the like.
 * Free with dns_free() once no thread is inside dns_query().
 */
struct dns	*dns_new(const struct dns_opts *opts, char *err, size_t errlen);

/*
 * A static resolver for tests. Each entry is one record; status entries
 * make a name answer with an error for a type (type 0 = every type).
 * The table is copied.
 *
 * Data of an entry (presentation form, as in a zone file; the examples
 * below are C string literals):
 *   A, AAAA     an address; PTR, CNAME, NS: a name ("." is the root)
 *   MX          "PREF NAME"; "0 ." is a null MX (text "", pref 0)
 *   TXT, SPF    plain text is one string (cut into 255-octet
 *               character-strings); data starting with '"' is a list of
 *               quoted character-strings separated by white space, with
 *               \" \\ and \DDD escapes: "\"v=spf1 \" \"-all\"" is two
 *               strings that decode to "v=spf1 -all"
 *   any type    RFC 3597 generic form "\# LEN HEX", e.g. "\\# 3 010203":
 *               raw rdata, decoded like an answer from the network (so a
 *               malformed record gives DNS_MALFORMED)
 * Names are case-insensitive, a trailing dot is ignored. A name with no
 * entry (and no entry below it) is NXDOMAIN; a name with entries of
 * other types only is NODATA; CNAMEs are followed (asked type != CNAME)
 * up to 8 hops. An error entry (status != DNS_OK, data ignored) answers
 * its status for its type (0: every type) before any record. TTLs are
 * 300. dns_new_static() logs and returns NULL on an invalid name or data.
 */
struct dns_static_rr {
	const char	*name;		/* owner, no trailing dot */
	uint16_t	 type;
	const char	*data;		/* presentation form: "192.0.2.1",
					 * "10 mx.example", "v=spf1 -all",
					 * "host.example" */
	enum dns_status	 status;	/* DNS_OK for a record; else an error */
};
struct dns	*dns_new_static(const struct dns_static_rr *table, size_t n);

void		 dns_free(struct dns *d);

/*
 * dns_query - look up name/type. Always fills *res (free it with
 * dns_result_free, also on errors) and returns res->status.
 */
enum dns_status	 dns_query(struct dns *d, const char *name, uint16_t type,
		    struct dns_result *res);
void		 dns_result_free(struct dns_result *res);

/*
 * dns_rr_decode - decode rdata of type into rr->text, rr->textlen and
 * rr->pref (see struct dns_rr; other types get text ""). rr->text is
 * allocated (free it) on success and NULL on failure. Returns 0, or -1
 * if the rdata is malformed (wrong length, bad or compressed name,
 * string overrunning the rdata). Does not set rr->rdata/type/ttl.
 */
int		 dns_rr_decode(uint16_t type, const unsigned char *rdata,
		    size_t rdlen, struct dns_rr *rr);

/* dns_status_name - "ok", "nodata", "nxdomain", "servfail", "timeout"... */
const char	*dns_status_name(enum dns_status s);

/* dns_valid_name - non-zero if name is a syntactically valid domain name
 * (labels 1..63 octets, total <= 253, no empty label; trailing dot ok). */
int		 dns_valid_name(const char *name);

/*
 * dns_reverse_name - "5.0.0.127.in-addr.arpa" or the ip6.arpa nibble
 * name for an address in presentation form. 0, or -1 if ip is invalid.
 */
int		 dns_reverse_name(const char *ip, char *out, size_t outlen);

#endif
