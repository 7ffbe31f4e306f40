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
 * Later issues add "rule" (PCRE2) and "meta" lines to the same grammar.
 * A loaded struct rules is immutable and shared read-only by all threads.
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
 */
struct rules	*rules_load(const char *main_file, const char *local_file,
		    char *errs, size_t errlen);
void		 rules_free(struct rules *r);

/* rules_score - the symbol's score (0 when not listed). */
double		 rules_score(const struct rules *r, const char *symbol);
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

#endif
