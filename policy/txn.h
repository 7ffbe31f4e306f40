/*
 * txn.h - the transaction: everything known about one SMTP connection
 * and the message currently in it.
 *
 * A front end (milter or proxy) makes one struct txn per connection with
 * eng_txn_new(), fills the connection and envelope facts through the
 * txn_set_* functions and calls eng_event() at each SMTP stage. Checks
 * read the fields below, write their own result fields and add symbols
 * through txn_symbol(); they keep no pointers into the txn.
 *
 * Connection facts (client, HELO, auth) live for the whole connection;
 * message facts (envelope, headers, results of message checks) are freed
 * by txn_reset() on RSET or a new MAIL FROM.
 *
 * Thread safety: a txn belongs to one thread at a time (libmilter calls
 * one connection's callbacks in sequence).
 */
#ifndef MXW_TXN_H
#define MXW_TXN_H

#include <stddef.h>
#include <time.h>

/* Check outcomes (RFC 8601 result vocabulary). */
enum chk_res {
	CHK_NONE,
	CHK_PASS,
	CHK_FAIL,
	CHK_SOFTFAIL,
	CHK_NEUTRAL,
	CHK_TEMPERROR,
	CHK_PERMERROR,
	CHK_POLICY,
};
/* chk_res_name - "none", "pass", "fail", ... as in Authentication-Results. */
const char	*chk_res_name(enum chk_res r);

enum txn_event {
	TXN_EV_CONNECT,
	TXN_EV_HELO,
	TXN_EV_MAIL,
	TXN_EV_RCPT,
	TXN_EV_DATA,
	TXN_EV_HEADER,		/* the newest header in t->hdr[t->nhdr - 1] */
	TXN_EV_EOH,
	TXN_EV_BODY,		/* body chunk passed to eng_event_body() */
	TXN_EV_EOM,
};

/* Verdicts: a closed set. CONTINUE means "no decision yet". */
enum verdict_action {
	VERDICT_CONTINUE,
	VERDICT_ACCEPT,
	VERDICT_ADD_HEADER,
	VERDICT_QUARANTINE,
	VERDICT_TEMPFAIL,
	VERDICT_REJECT,
	VERDICT_DISCARD,
};
const char	*verdict_name(enum verdict_action a);

struct verdict {
	enum verdict_action	 action;
	char			 rcode[4];	/* "550" (reject/tempfail) */
	char			 xcode[16];	/* "5.7.1" */
	char			 text[512];	/* reply text, no code */
	char			 symbol[64];	/* what decided, "" for score */
};

/*
 * verdict_reply - the SMTP reply both front ends send for a reject or
 * tempfail verdict, made safe: a valid 4xx/5xx code (default 451/550),
 * an RFC 3463 enhanced code of the same class (default 4.7.1/5.7.1),
 * text without control characters (default "Try again later" /
 * "Rejected by policy"), cut to fit textlen. The code's class wins over
 * the action. Returns 1 for a temporary failure, 0 for a permanent one.
 */
int	 verdict_reply(const struct verdict *v, char rcode[4], char xcode[16],
	    char *text, size_t textlen);

struct txn_header {
	char	*name;		/* as received */
	char	*value;		/* raw: leading white space and folding kept */
};

/* A header edit the front end applies at end of message. */
enum txn_hdrop_kind { TXN_HDR_INSERT, TXN_HDR_ADD, TXN_HDR_DELETE };
struct txn_hdrop {
	enum txn_hdrop_kind	 kind;
	char			*name;
	char			*value;	/* INSERT/ADD: value, folded with "\n\t" */
	int			 index;	/* INSERT: position (0 = top);
					 * DELETE: 1-based occurrence among
					 * headers of this name (milter's) */
};

struct txn_sym {
	char	*name;
	char	*detail;	/* short reason for the log and trace, or NULL */
	double	 score;		/* filled by scoring */
	int	 conn;		/* connection-level: survives txn_reset() */
};

struct txn_spf {
	enum chk_res	 res;
	char		*domain;	/* identity's domain */
	char		*identity;	/* "mailfrom" or "helo" */
	char		*sender;	/* the full identity checked */
	char		*reason;	/* libspf2's comment, may be NULL */
};

struct txn_dkim_sig {
	enum chk_res	 res;
	char		*domain;	/* d= */
	char		*selector;	/* s= */
	char		*b;		/* first 8 characters of b= */
	char		*algorithm;	/* "rsa-sha256", "ed25519-sha256" */
	char		*reason;	/* why not pass, or NULL */
};

struct txn_dmarc {
	enum chk_res	 res;		/* pass/fail/none/temperror/permerror */
	char		*from_domain;	/* RFC5322.From domain */
	char		 policy[16];	/* p= applied: "none", "quarantine", "reject" */
	char		 disposition[16]; /* what we do: "none", "quarantine", "reject" */
};

struct eng;
struct eng_snap;
struct mime;

struct txn {
	struct eng	*eng;
	struct eng_snap	*snap;		/* config + rules, held until txn_free */
	char		 id[32];	/* session id for log lines */
	char		*queue_id;	/* MTA queue id, when known */

	/* Connection. */
	char		*client_ip;	/* presentation form, never NULL after connect */
	int		 client_port;
	char		*client_name;	/* MTA's verified name or NULL */
	int		 client_internal; /* in internal_networks */
	char		*helo;
	char		*auth_user;
	char		*tls_version;	/* "TLSv1.3"; NULL: no TLS/unknown */
	char		*tls_cipher;	/* "TLS_AES_128_GCM_SHA256"; NULL:
					 * no TLS, or the MTA did not say */
	char		*our_hostname;	/* MTA's $j when it gives one */
	unsigned	 nmsg;		/* MAIL commands so far (rate limits) */
	unsigned	 bad_rcpt;	/* recipients refused as unknown (harvest) */
	struct {			/* the last "not blocked" answer for */
		time_t	 at;		/* client_ip: its second and the */
		unsigned gen;		/* state_block_gen() then (0 at: none) */
		char	 ip[48];
	} unblocked;

	/* Message. */
	char		*mail_from;	/* envelope sender, no <>; "" = null sender */
	char		*mail_domain;	/* lower-case, NULL for null sender */
	char		**rcpt;
	size_t		 nrcpt;
	struct txn_header *hdr;
	size_t		 nhdr;
	char		*from_domain;	/* RFC5322.From domain, lower-case */
	size_t		 body_bytes;
	struct mime	*mime;		/* body decoder for content rules;
					 * owned by the engine */

	/* Results. */
	enum chk_res	 iprev;
	char		*iprev_name;	/* verified PTR name */
	struct txn_spf	 spf_helo;
	struct txn_spf	 spf;		/* the one that counts: MAIL FROM, or
					 * HELO for the null sender */
	struct txn_dkim_sig *dkim;
	size_t		 ndkim;
	void		*dkim_state;	/* owned by policy/dkim.c */
	struct txn_dmarc dmarc;
	struct txn_sym	*sym;
	size_t		 nsym;
	double		 score;

	/* Output. */
	struct txn_hdrop *hdrop;
	size_t		 nhdrop;
	struct verdict	 verdict;	/* the last decision */
	int		 logged;	/* summary line written for this message */
	int		 accepted;	/* accepted without further checks: 1 this
					 * message, 2 the whole connection */
	char		 accepted_by[64]; /* the deciding symbol */
	long long	 t_start_us;	/* for the summary log line */
};

/* txn_set_* - copy the string (NULL clears). */
void	 txn_set_client(struct txn *t, const char *ip, int port, const char *name);
void	 txn_set_helo(struct txn *t, const char *helo);
void	 txn_set_auth(struct txn *t, const char *user);
/* txn_set_tls - the client's TLS protocol version and cipher, as the
 * front end learnt them; NULL or "" for both means no TLS. */
void	 txn_set_tls(struct txn *t, const char *version,
	    const char *cipher);
void	 txn_set_queue_id(struct txn *t, const char *id);
/* txn_set_our_hostname - the MTA's own name ($j); NULL or "" keeps the
 * configured hostname. */
void	 txn_set_our_hostname(struct txn *t, const char *name);
/* txn_set_mail - the MAIL FROM address, with or without <>; also sets
 * mail_domain. Returns 0, or -1 if the address is malformed (the txn
 * then holds it anyway, and MAIL_MALFORMED is a symbol). */
int	 txn_set_mail(struct txn *t, const char *addr);
int	 txn_add_rcpt(struct txn *t, const char *addr);
void	 txn_add_header(struct txn *t, const char *name, const char *value);

/* txn_symbol - add a symbol (once: a second add of the same name is
 * ignored). detail may be NULL. */
void	 txn_symbol(struct txn *t, const char *name, const char *detail);
int	 txn_has_symbol(const struct txn *t, const char *name);
/* txn_symbol_detail - the symbol's detail ("" when it has none), or NULL
 * when the symbol is not there. */
const char *txn_symbol_detail(const struct txn *t, const char *name);

/* txn_hdrop - queue a header edit. */
void	 txn_hdrop(struct txn *t, enum txn_hdrop_kind kind, const char *name,
	    const char *value, int index);

/* txn_header_get - the n-th (0-based) header named name, or NULL. */
const char *txn_header_get(const struct txn *t, const char *name, int n);

/* For the engine only: free the message parts (txn_clear_message) or
 * every field (txn_clear_all) after the checks freed their own state. */
void	 txn_clear_message(struct txn *t);
void	 txn_clear_all(struct txn *t);

#endif
