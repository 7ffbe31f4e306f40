/*
 * rules.h - the rule set: symbol scores and actions, thresholds, lists.
 *
 * Read from the shipped rules file and an optional local file that
 * overrides it (a later definition of the same score, action, threshold
 * or list replaces the earlier one; within one file a second definition
 * is an error). The language (mxwarden.rules(5)):
 *
 *   threshold add_header 5
 *   threshold reject     10 ["550 5.7.1 text"]
 *   score  SPF_FAIL 3.0
 *   action DMARC_FAIL_REJECT reject "550 5.7.26 ... %{from_domain} ..."
 *   action SENDER_TEMPERROR  tempfail "451 4.1.8 ..."
 *   list   internal_networks 127.0.0.0/8 ::1 10.0.0.0/8
 *   list   local_domains     file:/etc/mxwarden/local_domains
 *
 *   rule   SUBJ_LOTTERY subject /you (have )?won/i score 2.5
 *   rule   HELO_LOCAL   helo    /^localhost$/i action reject "550 5.7.1 Bad HELO"
 *   rule   FROM_BAD     from    in:bad_senders score 3
 *   meta   LOTTERY_SPAM SUBJ_LOTTERY && !DKIM_PASS score 3
 *
 * A rule's score and action are those of its symbol (as if written with
 * score/action lines). Regex rules are compiled once at load (PCRE2,
 * JIT where available); every match runs under match, depth and heap
 * limits. A loaded struct rules is immutable and shared read-only by
 * all threads.
 */
#ifndef MXW_RULES_H
#define MXW_RULES_H

#include <stddef.h>

#include "txn.h"

struct rules;

/* Action of a symbol or threshold (VERDICT_* of txn.h) and its reply. */
struct rules_action {
	enum verdict_action	 action;	/* CONTINUE = none set */
	char			*reply;		/* "550 5.7.26 text" or NULL */
};

/*
 * rules_load - parse the files (local may be NULL or missing). All
 * errors go into errs as "file:line: reason" lines. NULL on any error.
 * flags: RULES_JIT JIT-compiles every pattern (a daemon's set, which
 * serves many messages); without it patterns run in PCRE2's
 * interpreter, which is cheaper for one message (`check`) or none.
 */
#define RULES_JIT	0x01
struct rules	*rules_load(const char *main_file, const char *local_file,
		    unsigned flags, char *errs, size_t errlen);
void		 rules_free(struct rules *r);

/* rules_score - the symbol's score (0 when not listed). */
double		 rules_score(const struct rules *r, const char *symbol);
/* rules_has_score - non-zero when a score line (or a rule's score)
 * sets the symbol's score. */
int		 rules_has_score(const struct rules *r, const char *symbol);
/* rules_action - the symbol's action, or NULL when it has none. */
const struct rules_action *rules_action(const struct rules *r,
		    const char *symbol);

enum rules_threshold { RT_ADD_HEADER, RT_QUARANTINE, RT_TEMPFAIL, RT_REJECT,
	RT_COUNT };
/* rules_threshold - 0 and *set = 0 when the threshold is not defined. */
double		 rules_threshold(const struct rules *r, enum rules_threshold which,
		    int *set, const char **reply);

/* List membership. A list that does not exist contains nothing. */
int		 rules_list_has_ip(const struct rules *r, const char *list,
		    const char *ip);
int		 rules_list_has_domain(const struct rules *r, const char *list,
		    const char *domain);	/* also subdomains of ".dom" entries */
int		 rules_list_exists(const struct rules *r, const char *list);
/* rules_list_count - entries in the list (0 when it does not exist). */
size_t		 rules_list_count(const struct rules *r, const char *list);

/*
 * rules_parse_reply - split "550 5.7.1 text" into its parts; enhanced
 * code optional. 0, or -1 if malformed. Pure; used by the loader and
 * by the engine's defaults.
 */
int		 rules_parse_reply(const char *reply, char rcode[4], char xcode[16],
		    const char **text);

/*
 * rules_expand - expand %{var} in a reply text for a txn. Variables:
 * client_ip, helo, from, from_domain, rcpt, symbol, hostname. Unknown
 * ones were refused at load time. Control characters never pass.
 */
void		 rules_expand(const char *tmpl, const struct txn *t,
		    const char *symbol, char *out, size_t outlen);

/* rules_ip_in_cidr - pure helper: "10.1.2.3" in "10.0.0.0/8". -1 if the
 * CIDR is malformed. */
int		 rules_ip_in_cidr(const char *ip, const char *cidr);

/* Stages at which rules run (the earliest that has their input). */
enum rules_stage { RS_CONNECT, RS_HELO, RS_MAIL, RS_RCPT, RS_EOM };

/* Input bounds: an envelope or header value given to a rule is cut at
 * RULES_MAX_INPUT bytes; body targets at max_body_bytes (mxwarden.conf). */
#define RULES_MAX_INPUT		65536

/* PCRE2 limits applied to every match. */
#define RULES_MATCH_LIMIT	100000
#define RULES_DEPTH_LIMIT	5000
#define RULES_HEAP_LIMIT_KB	16384

struct mime;

/*
 * rules_eval - run the regex, list and built-in list rules of a stage
 * over t, adding a symbol (detail: what it matched on) for each match;
 * with a resolver d, also the DNSBL/DNSWL (connect) and RHSBL (MAIL:
 * sender domain, end of message: From domain) zones.
 * At RS_RCPT only the newest recipient is tested. At RS_EOM m is the
 * message's MIME decoder (NULL: body targets see nothing). A match that
 * hits a PCRE2 limit adds RULES_LIMIT (detail: the rule) and counts as
 * no match. Returns the number of symbols added.
 */
struct dns;
int		 rules_eval(const struct rules *r, struct txn *t,
		    enum rules_stage stage, const struct mime *m, struct dns *d);
/* rules_mime_new - a MIME decoder for t's message (its top-level
 * headers), keeping at most max_bytes of text and raw body. */
struct mime	*rules_mime_new(const struct txn *t, size_t max_bytes);
/* rules_eval_meta - evaluate the meta rules (end of message, after all
 * other symbols), in the order defined. Returns the number added. */
int		 rules_eval_meta(const struct rules *r, struct txn *t);

/*
 * rules_lint - warnings a loaded set deserves but that do not refuse
 * it: meta rules naming unknown symbols, patterns that match the empty
 * string, rules whose symbol has neither score nor action. Appends
 * "file:line: warning: ..." lines to out; returns the count.
 */
int		 rules_lint(const struct rules *r, char *out, size_t outlen);

/*
 * rules_list_match - value in list: an IP against its IP/CIDR entries;
 * an address (with '@') against address entries (globs with * and ?,
 * case-insensitive) and against domain entries by its domain; anything
 * else against domain entries (".dom" also matches subdomains).
 */
int		 rules_list_match(const struct rules *r, const char *list,
		    const char *value);

/* rules_rx_count - number of regex and list rules (for tests, stats). */
size_t		 rules_rx_count(const struct rules *r);


/*
 * State controls (policy/ratelimit.c, harvest.c, greylist.c):
 *
 *   ratelimit NAME KEY LIMIT[/WINDOW] ["451 4.7.1 text"]
 *   harvest   threshold|window|block|tarpit_ms|tarpit_max_ms VALUE
 *   greylist  enable|delay|retry_window|expiry|awl_passes|awl_expiry|
 *             skip_spf_pass VALUE
 *
 * Durations are N, Ns, Nm, Nh or Nd. A later file replaces a ratelimit
 * of the same NAME and a setting; twice in one file is an error.
 */
enum rules_rl_key {
	RL_IP, RL_NET, RL_SENDER, RL_SENDER_DOMAIN, RL_AUTH_USER,
	RL_RCPT_PER_MSG, RL_MSG_PER_CONN, RL_CONN_PER_IP, RL_KEY_COUNT
};
struct rules_ratelimit {
	char			*name;
	enum rules_rl_key	 key;
	long			 limit;		/* events allowed per window */
	long			 window;	/* seconds; 0 for per-message keys */
	char			*reply;		/* "451 4.7.1 text" or NULL */
	int			 file, line;
};
const char	*rules_rl_key_name(enum rules_rl_key k);
size_t		 rules_ratelimit_count(const struct rules *r);
const struct rules_ratelimit *rules_ratelimit_get(const struct rules *r,
		    size_t i);
/* rules_param - a harvest/greylist setting (seconds, count or 0/1), or
 * dflt when the rule files do not set it. */
long		 rules_param(const struct rules *r, const char *section,
		    const char *name, long dflt);

#endif
