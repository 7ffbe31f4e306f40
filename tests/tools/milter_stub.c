/*
 * milter_stub.c - the milter front end (filter/milter.c) over a scripted
 * stand-in engine, for integration tests of the front end alone.
 *
 *   milter_stub -p SOCKET_SPEC -t TRACE_FILE [-T TIMEOUT_S]
 *
 * The stand-in implements the engine.h / txn.h calls milter.c makes. It
 * appends one line per event to TRACE_FILE (so a test can check what the
 * MTA passed: client, HELO, macros, headers with their leading space)
 * and decides from the input:
 *   HELO reject.helo.test          550 5.7.1 at HELO
 *   MAIL FROM reject@...           550 5.1.8, text with a '%' in it
 *   MAIL FROM tempfail@...         451 4.7.1
 *   MAIL FROM ctrl@...             550 5.7.1, text with CR LF TAB and '%'
 *   MAIL FROM badx@...             550 with enhanced code 4.1.1 (wrong class)
 *   MAIL FROM discard@...          discard
 *   RCPT TO reject@...             550 5.1.1
 *   RCPT TO rej4xx@...             "reject" with 421 4.7.0 (-> tempfail)
 *   header X-Stub: reject-eom      550 5.7.26 at end of message
 *   header X-Stub: tempfail-eom    451 4.7.1 at end of message
 *   header X-Stub: quarantine      quarantine (symbol STUB_QUARANTINE)
 *   header X-Stub: accept-early    accept from that header on
 *   header X-Stub: discard-eom     discard at end of message
 * At end of message it deletes every Authentication-Results header whose
 * authserv-id is mx.mxw.test, inserts its own at the top and adds
 * X-Spam-Status and X-Stub-Seen (what it saw).
 *
 * Thread safety: as the engine's contract: one txn per thread at a time;
 * trace lines are single write()s to an O_APPEND file.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "engine.h"
#include "log.h"
#include "milter.h"
#include "txn.h"
#include "util.h"

#define STUB_AUTHSERV	"mx.mxw.test"

struct eng {
	int	 trace_fd;
	long	 next_id;
};

struct stub_txn {
	struct txn	 t;		/* first: milter.c sees a struct txn */
	int		 accepted;	/* accept-early seen */
	size_t		 traced;	/* symbols already traced */
	char		 eom_action[32];
};

static struct eng stub_eng = { .trace_fd = -1 };

static void
stub_trace(const struct txn *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
stub_trace(const struct txn *t, const char *fmt, ...)
{
	char line[4096];
	int n, m;
	va_list ap;

	n = snprintf(line, sizeof(line), "%s ", t->id);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(stub_eng.trace_fd, line, (size_t)n) < 0)
		log_errno("stub: trace");
}

/* stub_visible - value with CR/LF/TAB shown as \r \n \t (caller frees). */
static char *
stub_visible(const char *s)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	for (; s != NULL && *s; s++) {
		if (*s == '\n')
			buf_puts(&b, "\\n");
		else if (*s == '\r')
			buf_puts(&b, "\\r");
		else if (*s == '\t')
			buf_puts(&b, "\\t");
		else
			buf_append(&b, s, 1);
	}
	buf_append(&b, "", 0);
	return b.data != NULL ? b.data : xstrdup("");
}

/* stub_trace_symbols - trace the symbols added since the last call
 * (milter.c adds RCPT_REJECTED_BY_MTA itself). */
static void
stub_trace_symbols(struct txn *t)
{
	struct stub_txn *s = (struct stub_txn *)t;

	for (; s->traced < t->nsym; s->traced++)
		stub_trace(t, "symbol %s %s", t->sym[s->traced].name,
		    t->sym[s->traced].detail ? t->sym[s->traced].detail : "-");
}

/* ---- engine.h ---- */

/* eng_bad_rcpt - the stub records a recipient the MTA refused as the
 * symbol RCPT_REJECTED_BY_MTA (the real engine counts it for harvest
 * control). */
enum verdict_action
eng_bad_rcpt(struct txn *t, const char *rcpt, struct verdict *v)
{
	memset(v, 0, sizeof(*v));
	txn_symbol(t, "RCPT_REJECTED_BY_MTA", rcpt);
	stub_trace_symbols(t);
	return VERDICT_CONTINUE;
}

struct txn *
eng_txn_new(struct eng *e)
{
	struct stub_txn *s = xcalloc(1, sizeof(*s));

	s->t.eng = e;
	str_fmt(s->t.id, sizeof(s->t.id), "S%ld",
	    __atomic_add_fetch(&e->next_id, 1, __ATOMIC_RELAXED));
	return &s->t;
}

static void
stub_free_message(struct txn *t)
{
	struct stub_txn *s = (struct stub_txn *)t;

	stub_trace_symbols(t);
	txn_clear_message(t);
	s->traced = t->nsym;
	s->accepted = 0;
	s->eom_action[0] = '\0';
}

void
eng_txn_reset(struct txn *t)
{
	stub_trace(t, "reset");
	stub_free_message(t);
}

void
eng_txn_free(struct txn *t)
{
	if (t == NULL)
		return;
	stub_trace(t, "free");
	stub_trace_symbols(t);
	txn_clear_all(t);
	free(t);
}

static enum verdict_action
stub_verdict(struct verdict *v, enum verdict_action a, const char *rcode,
    const char *xcode, const char *text)
{
	memset(v, 0, sizeof(*v));
	v->action = a;
	str_copy(v->rcode, rcode, sizeof(v->rcode));
	str_copy(v->xcode, xcode, sizeof(v->xcode));
	str_copy(v->text, text, sizeof(v->text));
	return a;
}

static int
stub_local_is(const char *addr, const char *local)
{
	size_t n = strlen(local);

	if (addr[0] == '<')
		addr++;
	return strncasecmp(addr, local, n) == 0 && addr[n] == '@';
}

static const char *
stub_nn(const char *s)
{
	return s != NULL ? s : "-";
}

static enum verdict_action
stub_connect_helo(struct txn *t, enum txn_event ev, struct verdict *v)
{
	if (ev == TXN_EV_CONNECT) {
		stub_trace(t, "connect ip=%s port=%d name=%s j=%s", t->client_ip,
		    t->client_port, stub_nn(t->client_name),
		    stub_nn(t->our_hostname));
		return stub_verdict(v, VERDICT_CONTINUE, "", "", "");
	}
	stub_trace(t, "helo %s tls=%s", stub_nn(t->helo),
	    stub_nn(t->tls_version));
	if (t->helo != NULL && strcasecmp(t->helo, "reject.helo.test") == 0)
		return stub_verdict(v, VERDICT_REJECT, "550", "5.7.1",
		    "Bad HELO, 100% sure");
	return stub_verdict(v, VERDICT_CONTINUE, "", "", "");
}

static enum verdict_action
stub_envelope(struct txn *t, enum txn_event ev, struct verdict *v)
{
	if (ev == TXN_EV_MAIL) {
		const char *m = t->mail_from;

		stub_trace(t, "mail <%s> auth=%s tls=%s qid=%s", m,
		    stub_nn(t->auth_user), stub_nn(t->tls_version),
		    stub_nn(t->queue_id));
		if (stub_local_is(m, "reject"))
			return stub_verdict(v, VERDICT_REJECT, "550", "5.1.8",
			    "Sender address rejected: 100% bogus");
		if (stub_local_is(m, "tempfail"))
			return stub_verdict(v, VERDICT_TEMPFAIL, "451", "4.7.1",
			    "Try again later");
		if (stub_local_is(m, "ctrl"))	/* must be cleaned */
			return stub_verdict(v, VERDICT_REJECT, "550", "5.7.1",
			    "bad\r\nline\tand 50%");
		if (stub_local_is(m, "badx"))	/* class mismatch */
			return stub_verdict(v, VERDICT_REJECT, "550", "4.1.1",
			    "Mismatched code");
		if (stub_local_is(m, "discard"))
			return stub_verdict(v, VERDICT_DISCARD, "", "", "");
		return stub_verdict(v, VERDICT_CONTINUE, "", "", "");
	}
	const char *r = t->rcpt[t->nrcpt - 1];

	stub_trace(t, "rcpt %s qid=%s", r, stub_nn(t->queue_id));
	if (stub_local_is(r, "reject"))
		return stub_verdict(v, VERDICT_REJECT, "550", "5.1.1",
		    "No such user");
	if (stub_local_is(r, "rej4xx"))
		return stub_verdict(v, VERDICT_REJECT, "421", "4.7.0",
		    "Too busy");
	return stub_verdict(v, VERDICT_CONTINUE, "", "", "");
}

static enum verdict_action
stub_header(struct txn *t, struct verdict *v)
{
	struct stub_txn *s = (struct stub_txn *)t;
	const struct txn_header *h = &t->hdr[t->nhdr - 1];
	char *vis = stub_visible(h->value);

	stub_trace(t, "header %s:[%s]", h->name, vis);
	free(vis);
	if (strcasecmp(h->name, "X-Stub") == 0) {
		char *copy = xstrdup(h->value), *a = str_trim(copy);

		if (strcmp(a, "accept-early") == 0)
			s->accepted = 1;
		else
			str_copy(s->eom_action, a, sizeof(s->eom_action));
		free(copy);
	}
	return stub_verdict(v, s->accepted ? VERDICT_ACCEPT : VERDICT_CONTINUE,
	    "", "", "");
}

/* stub_hdrops - the header edits a real engine would queue. */
static void
stub_hdrops(struct txn *t)
{
	int occ = 0;
	char *seen;

	for (size_t i = 0; i < t->nhdr; i++) {
		if (strcasecmp(t->hdr[i].name, "Authentication-Results") != 0)
			continue;
		occ++;
		const char *p = t->hdr[i].value + strspn(t->hdr[i].value, " \t");
		size_t n = strlen(STUB_AUTHSERV);

		if (strncasecmp(p, STUB_AUTHSERV, n) == 0 &&
		    (p[n] == ';' || p[n] == ' ' || p[n] == '\0'))
			txn_hdrop(t, TXN_HDR_DELETE, t->hdr[i].name, NULL, occ);
	}
	txn_hdrop(t, TXN_HDR_INSERT, "Authentication-Results",
	    STUB_AUTHSERV ";\n\tstub=pass", 0);
	txn_hdrop(t, TXN_HDR_ADD, "X-Spam-Status",
	    "No, score=0.0 required=5.0 tests=STUB_ENGINE", 0);
	seen = xasprintf("ip=%s port=%s name=%s helo=%s from=<%s> rcpts=%zu"
	    " hdrs=%zu body=%zu auth=%s", t->client_ip,
	    t->client_port > 0 ? "set" : "0", stub_nn(t->client_name),
	    stub_nn(t->helo), stub_nn(t->mail_from), t->nrcpt, t->nhdr,
	    t->body_bytes, stub_nn(t->auth_user));
	txn_hdrop(t, TXN_HDR_ADD, "X-Stub-Seen", seen, 0);
	free(seen);
}

static enum verdict_action
stub_eom(struct txn *t, struct verdict *v)
{
	struct stub_txn *s = (struct stub_txn *)t;
	const char *a = s->eom_action;
	enum verdict_action r;

	stub_trace(t, "eom qid=%s body=%zu", stub_nn(t->queue_id),
	    t->body_bytes);
	if (strcmp(a, "reject-eom") == 0)
		return stub_verdict(v, VERDICT_REJECT, "550", "5.7.26",
		    "Unauthenticated email is not accepted");
	if (strcmp(a, "tempfail-eom") == 0)
		return stub_verdict(v, VERDICT_TEMPFAIL, "451", "4.7.1",
		    "Try again later");
	if (strcmp(a, "discard-eom") == 0)
		return stub_verdict(v, VERDICT_DISCARD, "", "", "");
	stub_hdrops(t);
	if (strcmp(a, "quarantine") == 0) {
		r = stub_verdict(v, VERDICT_QUARANTINE, "", "", "");
		str_copy(v->symbol, "STUB_QUARANTINE", sizeof(v->symbol));
		return r;
	}
	return stub_verdict(v, VERDICT_ACCEPT, "", "", "");
}

enum verdict_action
eng_event(struct txn *t, enum txn_event ev, struct verdict *v)
{
	stub_trace_symbols(t);
	switch (ev) {
	case TXN_EV_CONNECT:
	case TXN_EV_HELO:
		return stub_connect_helo(t, ev, v);
	case TXN_EV_MAIL:
	case TXN_EV_RCPT:
		return stub_envelope(t, ev, v);
	case TXN_EV_HEADER:
		return stub_header(t, v);
	case TXN_EV_EOM:
		return stub_eom(t, v);
	case TXN_EV_DATA:
	case TXN_EV_EOH:
	case TXN_EV_BODY:
		stub_trace(t, "%s", ev == TXN_EV_DATA ? "data" : ev ==
		    TXN_EV_EOH ? "eoh" : "body");
		break;
	}
	return stub_verdict(v, ((struct stub_txn *)t)->accepted ?
	    VERDICT_ACCEPT : VERDICT_CONTINUE, "", "", "");
}

enum verdict_action
eng_body(struct txn *t, const unsigned char *data, size_t len,
    struct verdict *v)
{
	(void)data;
	t->body_bytes += len;
	return stub_verdict(v, ((struct stub_txn *)t)->accepted ?
	    VERDICT_ACCEPT : VERDICT_CONTINUE, "", "", "");
}

int
main(int argc, char **argv)
{
	const char *spec = NULL, *trace = NULL;
	int timeout = 30, ch;
	char err[512];

	while ((ch = getopt(argc, argv, "p:t:T:")) != -1) {
		switch (ch) {
		case 'p': spec = optarg; break;
		case 't': trace = optarg; break;
		case 'T': timeout = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (spec == NULL || trace == NULL)
		goto usage;
	log_init("milter_stub", 1, LOG_LVL_DEBUG);
	stub_eng.trace_fd = open(trace, O_WRONLY | O_CREAT | O_APPEND |
	    O_CLOEXEC, 0644);
	if (stub_eng.trace_fd < 0) {
		log_errno("open %s", trace);
		return 1;
	}
	if (milter_run(&stub_eng, spec, timeout, err, sizeof(err)) < 0) {
		log_err("milter_run: %s", err);
		close(stub_eng.trace_fd);
		return 1;
	}
	close(stub_eng.trace_fd);
	return 0;
usage:
	fprintf(stderr, "usage: milter_stub -p SOCKET -t TRACE [-T TIMEOUT]\n");
	return 2;
}
