/*
 * rules_int.h - the inside of a loaded rule set, shared by the loader
 * (rules.c) and the evaluator (rules_eval.c) only. Nothing else
 * includes this header. A struct rules is immutable once loaded.
 */
#ifndef MXW_RULES_INT_H
#define MXW_RULES_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "meta.h"
#include "rules.h"

/* Where a regex rule looks. */
enum rules_target {
	RTG_HELO, RTG_CLIENT_NAME, RTG_CLIENT_IP, RTG_FROM, RTG_RCPT,
	RTG_HEADER, RTG_HEADER_ALL, RTG_SUBJECT, RTG_FROM_HEADER, RTG_BODY,
	RTG_RAW_BODY, RTG_ATTACH_NAME, RTG_ATTACH_TYPE, RTG_TLS, RTG_COUNT
};

struct rules_rx {
	char		*name;		/* the symbol it adds */
	enum rules_target target;
	char		*header;	/* header:NAME */
	char		*pattern;	/* as written, for the trace and lint */
	pcre2_code	*code;		/* NULL for list rules */
	char		*list;		/* in:LIST */
	int		 file, line;
};

struct rules_meta {
	char		 *name;
	struct meta_expr *expr;
	int		  file, line;
};

struct rules_sym {
	char			*name;
	double			 score;
	int			 has_score;
	struct rules_action	 act;
	/* file index and line of the definitions, for duplicate checks */
	int			 score_file, score_line;
	int			 act_file, act_line;
};

struct rules_list {
	char	 *name;
	char	**items;
	size_t	  n;
	int	  file, line;
};

struct rules {
	struct rules_sym	*sym;
	size_t			 nsym;
	struct rules_list	*list;
	size_t			 nlist;
	struct {
		int	 set;
		double	 value;
		char	*reply;
		int	 file, line;
	} thr[RT_COUNT];
	struct rules_rx		*rx;
	size_t			 nrx;
	struct rules_meta	*meta;
	size_t			 nmeta;
	struct dnsbl_set	*dnsbl;		/* dnsbl/dnswl/rhsbl zones */
	pcre2_match_context	*mctx;		/* limits for every match */
	char			*file_names[2];
	struct rules_ratelimit	*rl;		/* ratelimit lines */
	size_t			 nrl;
	struct rules_param {			/* harvest/greylist settings */
		int	 idx;			/* into rules.c's rp_params[] */
		long	 value;			/* seconds, count or 0/1 */
		int	 file, line;
	}			*param;
	size_t			 nparam;
};

const char	*rules_target_name(enum rules_target t);
enum rules_stage rules_target_stage(enum rules_target t);

struct buf;
/* rules_lint_unreachable (rules_lint.c) - warnings for rules that a
 * whitelist or an accept rule shadows, one "file:line: warning: ..."
 * line each into b; returns how many. */
int		 rules_lint_unreachable(const struct rules *r, struct buf *b);

#endif
