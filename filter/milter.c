/*
 * milter.c - the milter front end: turns libmilter callbacks into engine
 * transaction events and enforces the engine's verdicts.
 *
 * Called by filter/main.c through milter_run(); libmilter then calls the
 * milter_cb_* functions below, one connection per thread. Each MTA
 * connection owns one struct milter_conn (libmilter's private pointer)
 * holding the engine's struct txn; both are freed in the close callback.
 * Strings from libmilter are copied by the txn_set_* functions.
 *
 * Verdict mapping: reject/tempfail become smfi_setreply() plus
 * SMFIS_REJECT/SMFIS_TEMPFAIL at the stage the engine decided; accept,
 * add_header and quarantine before end of message just continue, so
 * that the header edits (Authentication-Results, X-Spam-*, removal of
 * forged Authentication-Results) are always applied at end of message.
 *
 * Thread safety: module state is the engine pointer (set before
 * smfi_main() starts any thread, read-only afterwards), the stop flag
 * (atomic), and the list of open connections with the number of running
 * callbacks (milter_lock), used to free what libmilter abandons at a
 * stop. No static scratch buffers.
 *
 * Security: every string from the MTA is untrusted; reply text sent back
 * to the MTA is stripped of control characters and '%' is escaped.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "engine.h"
#include "log.h"
#include "milter.h"
#include "txn.h"
#include "util.h"

/* Macros we ask the MTA for at each stage (smfi_setsymlist). */
#define MILTER_MACROS_CONNECT	"j {client_addr} {client_port}"
#define MILTER_MACROS_HELO	"{tls_version} {cipher}"
#define MILTER_MACROS_ENVFROM	"i {auth_authen} {tls_version} {cipher}"
#define MILTER_MACROS_ENVRCPT	"i {rcpt_mailer}"
#define MILTER_MACROS_EOM	"i"

#define MILTER_REPLY_MAX	900	/* reply text after escaping */
#define MILTER_DRAIN_S		30	/* wait for callbacks at shutdown */

/* Where a verdict is enforced: some answers mean different things. */
enum milter_stage { MS_CONNECT, MS_HELO, MS_MESSAGE, MS_BODY, MS_EOM };

struct milter_conn {
	struct milter_conn *next, *prev;	/* milter_conns, under milter_lock */
	struct txn	*t;
	unsigned long	 actions;	/* SMFIF_* the MTA granted */
	unsigned long	 proto;		/* SMFIP_* agreed */
	int		 in_msg;	/* MAIL seen since the last reset */
	int		 discard_conn;	/* discard every message */
};

static struct eng *milter_eng;
static int milter_stopping;
/* milter_lock guards the list of open connections, the number of
 * callbacks running and the "reaped" flag (set at the end of a stop:
 * from then on no callback touches a connection). */
static pthread_mutex_t milter_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t milter_idle = PTHREAD_COND_INITIALIZER;
static struct milter_conn *milter_conns;
static int milter_busy;
static int milter_reaped;

static int
milter_is_stopping(void)
{
	return __atomic_load_n(&milter_stopping, __ATOMIC_ACQUIRE);
}

/* milter_conn_get - the connection's state, made on first use. */
static struct milter_conn *
milter_conn_get(SMFICTX *ctx)
{
	struct milter_conn *c = smfi_getpriv(ctx);

	if (c != NULL)
		return c;
	c = xcalloc(1, sizeof(*c));
	c->actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE;
	smfi_setpriv(ctx, c);
	pthread_mutex_lock(&milter_lock);
	c->next = milter_conns;
	if (milter_conns != NULL)
		milter_conns->prev = c;
	milter_conns = c;
	pthread_mutex_unlock(&milter_lock);
	return c;
}

/* milter_conn_free - unlink (caller holds milter_lock) and free. */
static void
milter_conn_free(struct milter_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		milter_conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->t != NULL)
		eng_txn_free(c->t);
	free(c);
}

static const char *
milter_id(const struct milter_conn *c)
{
	return c->t != NULL ? c->t->id : "-";
}

/* milter_macro - a macro value, NULL when absent or empty. */
static const char *
milter_macro(SMFICTX *ctx, const char *name)
{
	const char *v = smfi_getsymval(ctx, (char *)name);

	return (v != NULL && *v != '\0') ? v : NULL;
}

/*
 * milter_reply_text - copy src into dst for smfi_setreply(): '%' doubled
 * (the MTA treats the text as a format), control characters replaced by
 * spaces, cut at MILTER_REPLY_MAX bytes.
 */
static void
milter_reply_text(char *dst, size_t dstlen, const char *src)
{
	size_t n = 0;
	size_t lim = dstlen - 1 < MILTER_REPLY_MAX ? dstlen - 1 : MILTER_REPLY_MAX;

	for (; *src != '\0'; src++) {
		unsigned char ch = (unsigned char)*src;
		size_t need = ch == '%' ? 2 : 1;

		if (n + need > lim)
			break;
		if (ch == '%')
			dst[n++] = '%';
		dst[n++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	dst[n] = '\0';
}

/*
 * milter_reply - set the SMTP reply for a reject or tempfail verdict and
 * return the matching SMFIS_ code. The reply code's class wins over the
 * action (a "reject" with a 4xx text is a temporary failure to the MTA).
 */
static sfsistat
milter_reply(SMFICTX *ctx, const struct milter_conn *c,
    const struct verdict *v)
{
	char rcode[4], xcode[16], plain[MILTER_REPLY_MAX + 1];
	char text[2 * MILTER_REPLY_MAX + 1];
	int temp = verdict_reply(v, rcode, xcode, plain, sizeof(plain));

	milter_reply_text(text, sizeof(text), plain);
	if (smfi_setreply(ctx, (char *)rcode, (char *)xcode,
	    text[0] != '\0' ? text : NULL) != MI_SUCCESS)
		log_warn("%s milter: MTA reply \"%s %s %s\" refused by libmilter",
		    milter_id(c), rcode, xcode, text);
	log_debug("%s milter: %s %s %s %s", milter_id(c),
	    temp ? "tempfail" : "reject", rcode, xcode, v->text);
	return temp ? SMFIS_TEMPFAIL : SMFIS_REJECT;
}

/* milter_shutdown_reply - refuse new work while stopping (421: the MTA
 * closes the session, so shutdown is not held up by it). */
static sfsistat
milter_shutdown_reply(SMFICTX *ctx)
{
	smfi_setreply(ctx, "421", "4.3.2", "Service shutting down");
	return SMFIS_TEMPFAIL;
}

/*
 * milter_decide - turn an engine verdict before end of message into a
 * libmilter answer.
 */
static sfsistat
milter_decide(SMFICTX *ctx, struct milter_conn *c, const struct verdict *v,
    enum milter_stage st)
{
	switch (v->action) {
	case VERDICT_REJECT:
	case VERDICT_TEMPFAIL:
		return milter_reply(ctx, c, v);
	case VERDICT_DISCARD:
		if (st == MS_CONNECT || st == MS_HELO) {
			/* No message to discard yet: discard each one. */
			c->discard_conn = 1;
			return SMFIS_CONTINUE;
		}
		return SMFIS_DISCARD;
	case VERDICT_ACCEPT:
		/* Checking is over, but the header edits still have to be
		 * made at end of message: skip the rest of the body only. */
		if (st == MS_BODY && (c->proto & SMFIP_SKIP))
			return SMFIS_SKIP;
		return SMFIS_CONTINUE;
	case VERDICT_CONTINUE:
	case VERDICT_ADD_HEADER:
	case VERDICT_QUARANTINE:
		return SMFIS_CONTINUE;
	}
	return SMFIS_CONTINUE;
}

static sfsistat
milter_do_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	struct milter_conn *c = milter_conn_get(ctx);
	unsigned long want = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE;
	/* Leading space: DKIM "simple" needs the header as received. No
	 * UNKNOWN step; SKIP and RCPT_REJ when the MTA has them. */
	unsigned long proto = SMFIP_HDR_LEADSPC | SMFIP_NOUNKNOWN | SMFIP_SKIP |
	    SMFIP_RCPT_REJ;

	(void)f2;
	(void)f3;
	if ((f0 & want) != want)
		log_warn("milter: the MTA offers actions 0x%lx, not all of 0x%lx:"
		    " some header edits will fail", f0, want);
	c->actions = f0 & want;
	c->proto = f1 & proto;
	*pf0 = c->actions;
	*pf1 = c->proto;
	*pf2 = 0;
	*pf3 = 0;
	if (f0 & SMFIF_SETSYMLIST) {
		*pf0 |= SMFIF_SETSYMLIST;
		smfi_setsymlist(ctx, SMFIM_CONNECT, MILTER_MACROS_CONNECT);
		smfi_setsymlist(ctx, SMFIM_HELO, MILTER_MACROS_HELO);
		smfi_setsymlist(ctx, SMFIM_ENVFROM, MILTER_MACROS_ENVFROM);
		smfi_setsymlist(ctx, SMFIM_ENVRCPT, MILTER_MACROS_ENVRCPT);
		smfi_setsymlist(ctx, SMFIM_EOM, MILTER_MACROS_EOM);
	}
	return SMFIS_CONTINUE;
}

/*
 * milter_addr - the client address and port from libmilter's hostaddr,
 * else from the {client_addr}/{client_port} macros. IPv4-mapped IPv6
 * addresses are shown as IPv4. Returns 0, or -1 when neither is usable.
 */
static int
milter_addr(SMFICTX *ctx, const struct sockaddr *sa, char *ip, size_t iplen,
    int *port)
{
	const char *m;
	unsigned char tmp[sizeof(struct in6_addr)];

	*port = 0;
	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		*port = ntohs(s4->sin_port);
		return inet_ntop(AF_INET, &s4->sin_addr, ip, iplen) ? 0 : -1;
	}
	if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		*port = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			return inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip,
			    iplen) ? 0 : -1;
		return inet_ntop(AF_INET6, &s6->sin6_addr, ip, iplen) ? 0 : -1;
	}
	if ((m = milter_macro(ctx, "{client_addr}")) == NULL)
		return -1;
	if (strncasecmp(m, "IPv6:", 5) == 0)
		m += 5;
	if (inet_pton(AF_INET, m, tmp) != 1 && inet_pton(AF_INET6, m, tmp) != 1)
		return -1;
	if (str_copy(ip, m, iplen) < 0)
		return -1;
	if ((m = milter_macro(ctx, "{client_port}")) != NULL)
		*port = atoi(m);
	if (*port < 0 || *port > 65535)
		*port = 0;
	return 0;
}

static sfsistat
milter_do_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct milter_conn *c = milter_conn_get(ctx);
	struct verdict v;
	char ip[INET6_ADDRSTRLEN];
	int port;
	const char *name = hostname;

	if (milter_is_stopping())
		return milter_shutdown_reply(ctx);
	if (c->t != NULL)		/* a second connect: start over */
		eng_txn_free(c->t);
	c->t = eng_txn_new(milter_eng);
	c->in_msg = 0;
	c->discard_conn = 0;
	if (milter_addr(ctx, hostaddr, ip, sizeof(ip), &port) < 0) {
		/* Not a TCP client (local submission through a milter):
		 * nothing to check it against. */
		log_info("%s milter: client without an IP address (%s), using"
		    " 127.0.0.1", c->t->id, hostname ? hostname : "?");
		str_copy(ip, "127.0.0.1", sizeof(ip));
	}
	/* Postfix says "unknown", Sendmail "[1.2.3.4]" for no verified name. */
	if (name != NULL && (*name == '\0' || *name == '[' ||
	    strcasecmp(name, "unknown") == 0))
		name = NULL;
	txn_set_client(c->t, ip, port, name);
	txn_set_our_hostname(c->t, milter_macro(ctx, "j"));
	log_debug("%s milter: connect [%s]:%d name=%s", c->t->id, ip, port,
	    name ? name : "-");
	eng_event(c->t, TXN_EV_CONNECT, &v);
	return milter_decide(ctx, c, &v, MS_CONNECT);
}

/* milter_txn - the connection's txn; NULL (and a log line) when the MTA
 * skipped connect, which a sane MTA never does. */
static struct txn *
milter_txn(SMFICTX *ctx, struct milter_conn **cp, const char *where)
{
	struct milter_conn *c = milter_conn_get(ctx);

	*cp = c;
	if (c->t == NULL)
		log_warn("milter: PROTOCOL %s before connect", where);
	return c->t;
}

static sfsistat
milter_tempfail_protocol(SMFICTX *ctx)
{
	smfi_setreply(ctx, "451", "4.3.0", "Mail filter protocol error");
	return SMFIS_TEMPFAIL;
}

/* milter_tls - the TLS facts ({tls_version}, {cipher}) into the txn
 * when the MTA gives them; the MTA defines them only after STARTTLS (or
 * on an implicit-TLS port), so their absence changes nothing. */
static void
milter_tls(SMFICTX *ctx, struct txn *t)
{
	const char *version = milter_macro(ctx, "{tls_version}");
	const char *cipher = milter_macro(ctx, "{cipher}");

	if (version != NULL || cipher != NULL)
		txn_set_tls(t, version, cipher);
}

static sfsistat
milter_do_helo(SMFICTX *ctx, char *helohost)
{
	struct milter_conn *c;
	struct txn *t = milter_txn(ctx, &c, "HELO");
	struct verdict v;

	if (t == NULL)
		return milter_tempfail_protocol(ctx);
	txn_set_helo(t, helohost);
	milter_tls(ctx, t);
	eng_event(t, TXN_EV_HELO, &v);
	return milter_decide(ctx, c, &v, MS_HELO);
}

static void
milter_queue_id(SMFICTX *ctx, struct txn *t)
{
	const char *i = milter_macro(ctx, "i");

	if (i != NULL && (t->queue_id == NULL || strcmp(t->queue_id, i) != 0))
		txn_set_queue_id(t, i);
}

static sfsistat
milter_do_envfrom(SMFICTX *ctx, char **argv)
{
	struct milter_conn *c;
	struct txn *t = milter_txn(ctx, &c, "MAIL");
	struct verdict v;
	const char *m;

	if (t == NULL)
		return milter_tempfail_protocol(ctx);
	if (milter_is_stopping())
		return milter_shutdown_reply(ctx);
	if (c->in_msg)
		eng_txn_reset(t);
	c->in_msg = 1;
	if (c->discard_conn)
		return SMFIS_DISCARD;
	if ((m = milter_macro(ctx, "{auth_authen}")) != NULL)
		txn_set_auth(t, m);
	milter_tls(ctx, t);
	milter_queue_id(ctx, t);
	txn_set_mail(t, argv[0] != NULL ? argv[0] : "");
	eng_event(t, TXN_EV_MAIL, &v);
	return milter_decide(ctx, c, &v, MS_MESSAGE);
}

static sfsistat
milter_do_envrcpt(SMFICTX *ctx, char **argv)
{
	struct milter_conn *c;
	struct txn *t = milter_txn(ctx, &c, "RCPT");
	struct verdict v;
	const char *mailer = milter_macro(ctx, "{rcpt_mailer}");
	const char *rcpt = argv[0] != NULL ? argv[0] : "";

	if (t == NULL)
		return milter_tempfail_protocol(ctx);
	milter_queue_id(ctx, t);
	if (mailer != NULL && strcmp(mailer, "error") == 0) {
		/* The MTA rejected this recipient already (SMFIP_RCPT_REJ):
		 * not part of the message, but evidence of harvesting. */
		log_debug("%s milter: recipient %s rejected by the MTA", t->id,
		    rcpt);
		if (eng_bad_rcpt(t, rcpt, &v) != VERDICT_CONTINUE)
			return milter_decide(ctx, c, &v, MS_MESSAGE);
		return SMFIS_CONTINUE;
	}
	txn_add_rcpt(t, rcpt);
	eng_event(t, TXN_EV_RCPT, &v);
	return milter_decide(ctx, c, &v, MS_MESSAGE);
}

static sfsistat
milter_do_data(SMFICTX *ctx)
{
	struct milter_conn *c;
	struct txn *t = milter_txn(ctx, &c, "DATA");
	struct verdict v;

	if (t == NULL)
		return milter_tempfail_protocol(ctx);
	milter_queue_id(ctx, t);
	eng_event(t, TXN_EV_DATA, &v);
	return milter_decide(ctx, c, &v, MS_MESSAGE);
}

static sfsistat
milter_do_header(SMFICTX *ctx, char *name, char *value)
{
	struct milter_conn *c;
	struct txn *t = milter_txn(ctx, &c, "header");
	struct verdict v;

	if (t == NULL)
		return milter_tempfail_protocol(ctx);
	if (value == NULL)
		value = "";
	if (c->proto & SMFIP_HDR_LEADSPC) {
		txn_add_header(t, name, value);
	} else {
		/* The MTA stripped the space after the colon: the usual
		 * single space is the best guess at the original. */
		char *v1 = xasprintf(" %s", value);

		txn_add_header(t, name, v1);
		free(v1);
	}
	eng_event(t, TXN_EV_HEADER, &v);
	return milter_decide(ctx, c, &v, MS_MESSAGE);
}

static sfsistat
milter_do_eoh(SMFICTX *ctx)
{
	struct milter_conn *c;
	struct txn *t = milter_txn(ctx, &c, "EOH");
	struct verdict v;

	if (t == NULL)
		return milter_tempfail_protocol(ctx);
	eng_event(t, TXN_EV_EOH, &v);
	return milter_decide(ctx, c, &v, MS_MESSAGE);
}

static sfsistat
milter_do_body(SMFICTX *ctx, unsigned char *data, size_t len)
{
	struct milter_conn *c;
	struct txn *t = milter_txn(ctx, &c, "body");
	struct verdict v;

	if (t == NULL)
		return milter_tempfail_protocol(ctx);
	eng_body(t, data, len, &v);
	return milter_decide(ctx, c, &v, MS_BODY);
}

/* Deletes sorted by name, then highest occurrence first. */
static int
milter_del_cmp(const void *a, const void *b)
{
	const struct txn_hdrop *x = *(const struct txn_hdrop *const *)a;
	const struct txn_hdrop *y = *(const struct txn_hdrop *const *)b;
	int r = strcasecmp(x->name, y->name);

	if (r != 0)
		return r;
	return (y->index > x->index) - (y->index < x->index);
}

/*
 * milter_apply_deletes - remove headers, highest occurrence of each name
 * first: whether the MTA renumbers the others after a deletion or not,
 * the indexes (counted among the headers as received) stay right.
 */
static int
milter_apply_deletes(SMFICTX *ctx, struct txn *t)
{
	struct txn_hdrop **del = xcalloc(t->nhdrop + 1, sizeof(*del));
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < t->nhdrop; i++)
		if (t->hdrop[i].kind == TXN_HDR_DELETE)
			del[n++] = &t->hdrop[i];
	qsort(del, n, sizeof(*del), milter_del_cmp);
	for (size_t i = 0; i < n; i++) {
		if (smfi_chgheader(ctx, del[i]->name, del[i]->index, NULL) !=
		    MI_SUCCESS) {
			log_err("%s milter: cannot delete header %s #%d",
			    t->id, del[i]->name, del[i]->index);
			rc = -1;
		}
	}
	free(del);
	return rc;
}

/*
 * milter_apply_hdrops - make the engine's header edits: deletions first
 * (their indexes refer to the headers as received), then insertions and
 * additions in the engine's order. Returns 0, or -1 if the MTA or
 * libmilter refused one.
 */
static int
milter_apply_hdrops(SMFICTX *ctx, struct milter_conn *c, struct txn *t)
{
	int rc = milter_apply_deletes(ctx, t);

	for (size_t i = 0; i < t->nhdrop; i++) {
		struct txn_hdrop *op = &t->hdrop[i];
		const char *val = op->value != NULL ? op->value : "";
		char *owned = NULL;
		int r;

		if (op->kind == TXN_HDR_DELETE)
			continue;
		/* With leading-space headers the MTA takes the value as is. */
		if ((c->proto & SMFIP_HDR_LEADSPC) && val[0] != ' ' &&
		    val[0] != '\t')
			val = owned = xasprintf(" %s", val);
		if (op->kind == TXN_HDR_INSERT)
			r = smfi_insheader(ctx, op->index, op->name, (char *)val);
		else
			r = smfi_addheader(ctx, op->name, (char *)val);
		if (r != MI_SUCCESS) {
			log_err("%s milter: cannot add header %s", t->id,
			    op->name);
			rc = -1;
		}
		free(owned);
	}
	return rc;
}

static sfsistat
milter_quarantine(SMFICTX *ctx, struct txn *t, const struct verdict *v)
{
	char reason[256];
	const char *why = v->symbol[0] ? v->symbol : v->text[0] ? v->text :
	    "spam score";

	/* A reason too long is cut: it is only a note in the queue. */
	(void)str_fmt(reason, sizeof(reason), "mxwarden: %s", why);
	for (char *p = reason; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	if (smfi_quarantine(ctx, reason) != MI_SUCCESS) {
		log_err("%s milter: the MTA refused to quarantine", t->id);
		return SMFIS_TEMPFAIL;
	}
	return SMFIS_ACCEPT;
}

static sfsistat
milter_do_eom(SMFICTX *ctx)
{
	struct milter_conn *c;
	struct txn *t = milter_txn(ctx, &c, "EOM");
	struct verdict v;

	if (t == NULL)
		return milter_tempfail_protocol(ctx);
	milter_queue_id(ctx, t);
	eng_event(t, TXN_EV_EOM, &v);
	switch (v.action) {
	case VERDICT_REJECT:
	case VERDICT_TEMPFAIL:
		return milter_reply(ctx, c, &v);
	case VERDICT_DISCARD:
		return SMFIS_DISCARD;
	default:
		break;
	}
	if (milter_apply_hdrops(ctx, c, t) < 0) {
		/* A forged Authentication-Results left in place, or ours
		 * missing: never pass such a message on. */
		smfi_setreply(ctx, "451", "4.3.0", "Mail filter cannot edit"
		    " the message, try again later");
		return SMFIS_TEMPFAIL;
	}
	if (v.action == VERDICT_QUARANTINE)
		return milter_quarantine(ctx, t, &v);
	return SMFIS_ACCEPT;
}

static sfsistat
milter_do_abort(SMFICTX *ctx)
{
	struct milter_conn *c = smfi_getpriv(ctx);

	if (c != NULL && c->t != NULL && c->in_msg) {
		eng_txn_reset(c->t);
		c->in_msg = 0;
	}
	return SMFIS_CONTINUE;
}

static sfsistat
milter_do_close(SMFICTX *ctx)
{
	struct milter_conn *c = smfi_getpriv(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	smfi_setpriv(ctx, NULL);
	pthread_mutex_lock(&milter_lock);
	milter_conn_free(c);
	pthread_mutex_unlock(&milter_lock);
	return SMFIS_CONTINUE;
}

/*
 * milter_unix_path - the path of a "unix:" / "local:" spec, or NULL.
 */
static const char *
milter_unix_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	if (spec[0] == '/')
		return spec;
	return NULL;
}

/*
 * milter_clear_stale - remove a unix socket left by a dead process.
 * Returns 0 (nothing there, or removed), -1 with a reason otherwise.
 */
static int
milter_clear_stale(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 :
		    (str_fmt(err, errlen, "%s: %s", path, strerror(errno)), -1);
	if (!S_ISSOCK(st.st_mode)) {
		str_fmt(err, errlen, "%s exists and is not a socket", path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (str_copy(sun.sun_path, path, sizeof(sun.sun_path)) < 0) {
		str_fmt(err, errlen, "socket path too long: %s", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		str_fmt(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (r == 0) {
		str_fmt(err, errlen, "%s is in use by another process", path);
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		str_fmt(err, errlen, "cannot remove stale %s: %s", path,
		    strerror(errno));
		return -1;
	}
	log_info("milter: removed stale socket %s", path);
	return 0;
}

/*
 * milter_nodelay - set TCP_NODELAY on libmilter's listening socket (the
 * accepted sockets inherit it on Linux): at end of message each header
 * edit is its own write, and Nagle's algorithm against the MTA's delayed
 * ACK would hold every reply after the first for ~40 ms. libmilter does
 * not expose the descriptor, so find the TCP listener on our port.
 */
static void
milter_nodelay(const char *spec)
{
	const char *p = strchr(spec, ':');
	int port, one = 1;

	if (p == NULL || (strncmp(spec, "inet:", 5) != 0 &&
	    strncmp(spec, "inet6:", 6) != 0))
		return;
	port = atoi(p + 1);
	for (int fd = 3; fd < 1024; fd++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int acc = 0, type = 0;
		socklen_t il = sizeof(int);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &il) < 0 ||
		    !acc)
			continue;
		il = sizeof(int);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &il) < 0 ||
		    type != SOCK_STREAM)
			continue;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
			continue;
		if ((ss.ss_family == AF_INET &&
		    ntohs(((struct sockaddr_in *)&ss)->sin_port) == port) ||
		    (ss.ss_family == AF_INET6 &&
		    ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) == port)) {
			if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof(one)) < 0)
				log_errno("milter: TCP_NODELAY");
			return;
		}
	}
	log_debug("milter: listening socket for %s not found for TCP_NODELAY",
	    spec);
}

/*
 * milter_enter, milter_leave - bracket every callback. Once the stop has
 * reaped the connections, a late callback must not touch its own.
 */
static int
milter_enter(void)
{
	int r = 0;

	pthread_mutex_lock(&milter_lock);
	if (milter_reaped)
		r = -1;
	else
		milter_busy++;
	pthread_mutex_unlock(&milter_lock);
	return r;
}

static void
milter_leave(void)
{
	pthread_mutex_lock(&milter_lock);
	if (--milter_busy == 0)
		pthread_cond_broadcast(&milter_idle);
	pthread_mutex_unlock(&milter_lock);
}

/* milter_wait_idle - wait (bounded) until no callback runs; 0 or -1. */
static int
milter_wait_idle(int wait_s)
{
	struct timespec until;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_s;
	pthread_mutex_lock(&milter_lock);
	while (milter_busy > 0 && r == 0)
		if (pthread_cond_timedwait(&milter_idle, &milter_lock,
		    &until) == ETIMEDOUT)
			r = -1;
	if (milter_busy > 0)
		r = -1;
	pthread_mutex_unlock(&milter_lock);
	return r;
}

/*
 * milter_reap - after smfi_main() has returned: wait for the callbacks
 * still running, then free the connections libmilter has abandoned.
 * (Debian's libmilter runs a pool of workers: at a stop it stops serving
 * idle sessions and never calls their close callback.) Returns the
 * number of connections freed, or -1 when callbacks were still running
 * after wait_s seconds (then nothing is freed).
 */
static int
milter_reap(int wait_s)
{
	int n = 0;

	if (milter_wait_idle(wait_s) < 0)
		return -1;
	/* XXX a worker that passed libmilter's own stop test just before
	 * the stop may enter a callback a moment later: give it time. */
	usleep(200 * 1000);
	if (milter_wait_idle(wait_s) < 0)
		return -1;
	pthread_mutex_lock(&milter_lock);
	milter_reaped = 1;
	while (milter_conns != NULL) {
		milter_conn_free(milter_conns);
		n++;
	}
	pthread_mutex_unlock(&milter_lock);
	return n;
}

/* Callbacks as libmilter sees them: milter_do_* inside enter/leave. */
#define MILTER_CB(name, params, args)				\
static sfsistat							\
milter_cb_##name params						\
{								\
	sfsistat r;						\
								\
	if (milter_enter() < 0)					\
		return SMFIS_TEMPFAIL;				\
	r = milter_do_##name args;				\
	milter_leave();						\
	return r;						\
}

MILTER_CB(negotiate, (SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3),
    (ctx, f0, f1, f2, f3, pf0, pf1, pf2, pf3))
MILTER_CB(connect, (SMFICTX *ctx, char *host, _SOCK_ADDR *sa), (ctx, host, sa))
MILTER_CB(helo, (SMFICTX *ctx, char *helo), (ctx, helo))
MILTER_CB(envfrom, (SMFICTX *ctx, char **argv), (ctx, argv))
MILTER_CB(envrcpt, (SMFICTX *ctx, char **argv), (ctx, argv))
MILTER_CB(data, (SMFICTX *ctx), (ctx))
MILTER_CB(header, (SMFICTX *ctx, char *name, char *value), (ctx, name, value))
MILTER_CB(eoh, (SMFICTX *ctx), (ctx))
MILTER_CB(body, (SMFICTX *ctx, unsigned char *data, size_t len),
    (ctx, data, len))
MILTER_CB(eom, (SMFICTX *ctx), (ctx))
MILTER_CB(abort, (SMFICTX *ctx), (ctx))
MILTER_CB(close, (SMFICTX *ctx), (ctx))

static struct smfiDesc milter_desc = {
	.xxfi_name = "mxwarden",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE,
	.xxfi_connect = milter_cb_connect,
	.xxfi_helo = milter_cb_helo,
	.xxfi_envfrom = milter_cb_envfrom,
	.xxfi_envrcpt = milter_cb_envrcpt,
	.xxfi_header = milter_cb_header,
	.xxfi_eoh = milter_cb_eoh,
	.xxfi_body = milter_cb_body,
	.xxfi_eom = milter_cb_eom,
	.xxfi_abort = milter_cb_abort,
	.xxfi_close = milter_cb_close,
	.xxfi_unknown = NULL,
	.xxfi_data = milter_cb_data,
	.xxfi_negotiate = milter_cb_negotiate,
};

/* milter_setup - hand the socket and callbacks to libmilter; *sock_st
 * gets the unix socket's identity (st_ino 0 for inet). */
static int
milter_setup(const char *spec, int timeout_s, struct stat *sock_st, char *err,
    size_t errlen)
{
	const char *path = milter_unix_path(spec);
	char *conn = xstrdup(spec);
	int r = smfi_setconn(conn);

	free(conn);		/* libmilter keeps its own copy */
	if (r != MI_SUCCESS) {
		str_fmt(err, errlen, "bad milter socket \"%s\"", spec);
		return -1;
	}
	if (timeout_s > 0 && smfi_settimeout(timeout_s) != MI_SUCCESS) {
		str_fmt(err, errlen, "bad milter timeout %d", timeout_s);
		return -1;
	}
	if (smfi_register(milter_desc) != MI_SUCCESS) {
		str_fmt(err, errlen, "libmilter refused to register the filter");
		return -1;
	}
	if (path != NULL && milter_clear_stale(path, err, errlen) < 0)
		return -1;
	if (smfi_opensocket(false) != MI_SUCCESS) {
		str_fmt(err, errlen, "cannot listen on milter socket \"%s\""
		    " (bad address, or in use)", spec);
		return -1;
	}
	memset(sock_st, 0, sizeof(*sock_st));
	if (path != NULL && lstat(path, sock_st) < 0)
		memset(sock_st, 0, sizeof(*sock_st));
	milter_nodelay(spec);
	return 0;
}

/* milter_remove_socket - remove our unix socket at stop, unless another
 * process has put its own there meanwhile. */
static void
milter_remove_socket(const char *spec, const struct stat *ours)
{
	const char *path = milter_unix_path(spec);
	struct stat st;

	if (path == NULL || ours->st_ino == 0 || lstat(path, &st) < 0)
		return;
	if (st.st_ino == ours->st_ino && st.st_dev == ours->st_dev &&
	    unlink(path) < 0)
		log_errno("milter: cannot remove %s", path);
}

int
milter_run(struct eng *e, const char *socket_spec, int timeout_s, char *err,
    size_t errlen)
{
	int r, left;
	struct stat sock_st;

	if (e == NULL || socket_spec == NULL || *socket_spec == '\0') {
		str_fmt(err, errlen, "milter_run: no engine or socket");
		return -1;
	}
	milter_eng = e;
	__atomic_store_n(&milter_stopping, 0, __ATOMIC_RELEASE);
	milter_reaped = 0;
	/* A write to an MTA that went away must not end the process. */
	signal(SIGPIPE, SIG_IGN);
	if (milter_setup(socket_spec, timeout_s, &sock_st, err, errlen) < 0)
		return -1;
	log_info("milter: listening on %s", socket_spec);
	r = smfi_main();
	__atomic_store_n(&milter_stopping, 1, __ATOMIC_RELEASE);
	milter_remove_socket(socket_spec, &sock_st);
	left = milter_reap(MILTER_DRAIN_S);
	if (left < 0) {
		str_fmt(err, errlen, "callbacks still running %d s after the"
		    " stop", MILTER_DRAIN_S);
		return MILTER_BUSY;
	}
	if (left > 0)
		log_info("milter: %d idle MTA session(s) dropped at stop", left);
	if (r != MI_SUCCESS) {
		str_fmt(err, errlen, "libmilter stopped with an error (see the"
		    " mail log)");
		return -1;
	}
	log_info("milter: stopped");
	return 0;
}

void
milter_stop(void)
{
	__atomic_store_n(&milter_stopping, 1, __ATOMIC_RELEASE);
	smfi_stop();
}
