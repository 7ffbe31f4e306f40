/*
 * main.c - mxwarden's command line: the daemon and the admin commands.
 *
 *   mxwarden [-f] [-c FILE] [-o key=value]...      run the milter daemon
 *   mxwarden proxy [-f] [-c FILE] [-o ...]         run the SMTP proxy daemon
 *   mxwarden configtest [-c FILE] [-o ...]        check config and rules
 *   mxwarden reload [-c FILE] [-o ...]            validate, then SIGUSR1 the daemon
 *   mxwarden check [-c FILE] [options] < msg      evaluate one message
 *   mxwarden db [-c FILE] list|block|unblock|...  the state database
 *   mxwarden defaults                             print every setting
 *   mxwarden version
 *
 * Start-up order for the daemon: parse and validate everything (fatal
 * errors exit here, before anything is opened), create the engine,
 * bind, drop privileges, open the database, then serve. Nothing after
 * start-up exits the process except a signal asking it to stop.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "dbcli.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "milter.h"
#include "proxy.h"
#include "reload.h"
#include "rules.h"
#include "store.h"
#include "util.h"

#define MXW_VERSION	"0.1.0"
#define MXW_DEFAULT_CONF "/etc/mxwarden/mxwarden.conf"
#define MXW_MAX_OVERRIDES 64

struct opts {
	const char	*conf;
	char		*over[MXW_MAX_OVERRIDES];
	size_t		 nover;
	int		 foreground;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: mxwarden [-f] [-c FILE] [-o key=value]...      run the milter daemon\n"
	    "       mxwarden proxy [-f] [-c FILE] [-o key=value]... run the SMTP proxy\n"
	    "       mxwarden configtest [-c FILE] [-o key=value]... check config and rules\n"
	    "       mxwarden reload [-c FILE] [-o key=value]...   reload the running daemon\n"
	    "       mxwarden check [-c FILE] [-o key=value]... [--ip A] [--helo H]\n"
	    "                [--from S] [--rcpt R]... [--auth USER]\n"
	    "                [--tls \"VERSION CIPHER\"] [--json] [FILE]\n"
	    "       mxwarden defaults | version\n");
}

/* load_all - config and rules (rflags: RULES_JIT for a daemon); prints
 * every error; NULL on failure. */
static struct cfg *
load_all(const struct opts *o, unsigned rflags, struct rules **rules)
{
	char errs[16384];
	struct cfg *c = cfg_load(o->conf, o->over, o->nover, errs, sizeof(errs));

	*rules = NULL;
	if (c == NULL) {
		fputs(errs, stderr);
		return NULL;
	}
	*rules = rules_load(c->rules_file, c->local_rules_file, rflags, errs,
	    sizeof(errs));
	if (*rules == NULL) {
		fputs(errs, stderr);
		cfg_free(c);
		return NULL;
	}
	return c;
}

/* make_engine - the engine from config + rules; NULL after a message. */
static struct eng *
make_engine(const struct opts *o, unsigned rflags)
{
	struct rules *r;
	struct cfg *c = load_all(o, rflags, &r);
	char err[512];
	struct eng *e;

	if (c == NULL)
		return NULL;
	if ((e = eng_new(c, r, err, sizeof(err))) == NULL)
		fprintf(stderr, "mxwarden: %s\n", err);
	return e;
}

/* drop_privileges - become user (when root); verify it stuck. */
static int
drop_privileges(const char *user)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if (user == NULL || *user == '\0') {
		log_warn("running as root: set \"user\" in mxwarden.conf");
		return 0;
	}
	if ((pw = getpwnam(user)) == NULL) {
		log_err("user %s: no such user", user);
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) != 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0) {
		log_errno("cannot become user %s", user);
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		log_err("privilege drop to %s did not stick", user);
		return -1;
	}
	return 0;
}

static int
write_pid_file(const char *path)
{
	FILE *fp;

	if (path == NULL || *path == '\0')
		return 0;
	if ((fp = fopen(path, "w")) == NULL) {
		log_errno("pid file %s", path);
		return -1;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	return fclose(fp) == 0 ? 0 : -1;
}

/*
 * run_proxy - the proxy front end (mxwarden proxy): bind while root,
 * drop privileges (refusing to serve as root), serve until stopped.
 * Returns the exit status; *keep_eng is set when sessions may still
 * use the engine (the caller must not free it).
 */
static int
run_proxy(struct eng *e, const struct cfg *c, const char *user,
    int foreground, int to_stderr, const char *pidf, int *keep_eng,
    const struct opts *o)
{
	char err[512];
	struct proxy *p = proxy_open(c, err, sizeof(err));
	int rc;

	if (p == NULL) {
		log_err("%s", err);
		return 1;
	}
	if ((!foreground && daemon(0, to_stderr) != 0) ||
	    write_pid_file(pidf) != 0 || drop_privileges(user) != 0) {
		proxy_free(p);
		return 1;
	}
	if (geteuid() == 0 || getuid() == 0) {
		log_err("proxy: refusing to serve as root: set \"user\" in"
		    " mxwarden.conf");
		proxy_free(p);
		return 1;
	}
	/* The state database, opened after the privilege drop (see
	 * cmd_daemon). */
	int opened;
	struct store *st = store_open_retry(c->db_path, err, sizeof(err),
	    &opened);
	if (!opened)
		log_warn("database unavailable, on_db_error applies until it "
		    "is back: %s", err);
	eng_set_store(e, st);
	if (reload_start(e, o->conf, o->over, o->nover, err, sizeof(err)) != 0)
		log_warn("%s: reload by signal is not available", err);
	log_info("mxwarden %s starting: SMTP proxy to %s", MXW_VERSION,
	    c->proxy_backend);
	rc = proxy_run(p, e, err, sizeof(err)) == 0 ? 0 : 1;
	if (rc != 0) {
		log_err("proxy: %s", err);
		*keep_eng = 1;
	}
	proxy_free(p);
	if (!*keep_eng) {
		eng_set_store(e, NULL);
		store_close(st);
	}
	return rc;
}

static int
cmd_daemon(const struct opts *o, int proxy_mode)
{
	struct eng *e;
	struct store *st = NULL;
	char err[512];
	int rc, keep_eng = 0;

	log_init("mxwarden", 1, LOG_LVL_INFO);
	/* Before any thread exists: only the reload thread takes SIGUSR1. */
	reload_block();
	if ((e = make_engine(o, RULES_JIT)) == NULL)
		return 1;
	struct txn *probe = eng_txn_new(e);
	const struct cfg *c = eng_cfg(probe);
	char *sock = xstrdup(c->milter_socket), *db = xstrdup(c->db_path);
	char *user = xstrdup(c->user), *pidf = xstrdup(c->pid_file);
	int timeout = c->milter_timeout, level = c->log_level;
	int to_stderr = o->foreground || strcmp(c->log_target, "stderr") == 0;
	eng_txn_free(probe);

	log_init("mxwarden", to_stderr, (enum log_level)level);
	if (proxy_mode) {
		/* The config snapshot lives as long as the engine. */
		struct txn *t = eng_txn_new(e);
		/* The database is opened after the privilege drop. */
		rc = run_proxy(e, eng_cfg(t), user, o->foreground, to_stderr,
		    pidf, &keep_eng, o);
		eng_txn_free(t);
		goto out;
	}
	if (!o->foreground && daemon(0, to_stderr) != 0) {
		log_errno("daemon");
		rc = 1;
		goto out;
	}
	if (write_pid_file(pidf) != 0 || drop_privileges(user) != 0) {
		rc = 1;
		goto out;
	}
	/* A database that cannot be opened now is retried by the store;
	 * meanwhile the state checks apply on_db_error. */
	int opened;
	st = store_open_retry(db, err, sizeof(err), &opened);
	if (!opened)
		log_warn("database unavailable, on_db_error applies until it "
		    "is back: %s", err);
	eng_set_store(e, st);
	if (reload_start(e, o->conf, o->over, o->nover, err, sizeof(err)) != 0)
		log_warn("%s: reload by signal is not available", err);
	log_info("mxwarden %s starting: milter on %s", MXW_VERSION, sock);
	int mr = milter_run(e, sock, timeout, err, sizeof(err));
	rc = mr == 0 ? 0 : 1;
	if (mr != 0)
		log_err("milter: %s", err);
	if (mr == MILTER_BUSY) {
		/* Threads may still be inside the engine: do not free it. */
		log_err("exiting with transactions still running");
		_exit(1);
	}
	log_info("mxwarden stopped");
out:
	reload_stop();
	store_close(st);
	if (!keep_eng)
		eng_free(e);
	free(sock);
	free(db);
	free(user);
	if (pidf[0] != '\0')
		unlink(pidf);
	free(pidf);
	return rc;
}

static int
cmd_configtest(const struct opts *o)
{
	struct rules *r;
	struct cfg *c;
	char err[512];

	log_init("mxwarden", 1, LOG_LVL_WARN);
	if ((c = load_all(o, 0, &r)) == NULL)
		return 1;
	/* Lint: suspicious but valid rules (warnings, exit status 0). */
	char *lint = xmalloc(65536);
	if (rules_lint(r, lint, 65536) > 0)
		fputs(lint, stderr);
	free(lint);
	/* The engine set-up also validates the DNS options and the PSL;
	 * the proxy's own settings, its TLS files among them, are loaded as
	 * `mxwarden proxy` would. */
	struct eng *e = eng_new(c, r, err, sizeof(err));
	if (e == NULL || proxy_check_config(c, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", o->conf ? o->conf : "(defaults)", err);
		eng_free(e);
		return 1;
	}
	eng_free(e);
	printf("configuration ok\n");
	return 0;
}

static int
cmd_check(const struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ip", required_argument, NULL, 'i' },
		{ "port", required_argument, NULL, 'P' },
		{ "name", required_argument, NULL, 'n' },
		{ "helo", required_argument, NULL, 'h' },
		{ "from", required_argument, NULL, 'F' },
		{ "rcpt", required_argument, NULL, 'r' },
		{ "auth", required_argument, NULL, 'a' },
		{ "tls", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "state", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct check_args a = { 0 };
	int ch, rc, state = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'i': a.ip = optarg; break;
		case 'P': a.port = atoi(optarg); break;
		case 'n': a.client_name = optarg; break;
		case 'h': a.helo = optarg; break;
		case 'F': a.from = optarg; break;
		case 'a': a.auth = optarg; break;
		case 't': a.tls = optarg; break;
		case 'j': a.json = 1; break;
		case 's': state = 1; break;
		case 'r':
			if (a.nrcpt == ARRAY_LEN(a.rcpt)) {
				fprintf(stderr, "mxwarden check: too many --rcpt\n");
				return 3;
			}
			a.rcpt[a.nrcpt++] = optarg;
			break;
		default:
			usage(stderr);
			return 3;
		}
	}
	FILE *in = stdin;
	if (optind < argc && (in = fopen(argv[optind], "rb")) == NULL) {
		fprintf(stderr, "mxwarden check: %s: %s\n", argv[optind],
		    strerror(errno));
		return 3;
	}
	log_init("mxwarden", 1, LOG_LVL_WARN);
	struct eng *e = make_engine(o, 0);	/* one message: no JIT */
	if (e == NULL) {
		if (in != stdin)
			fclose(in);
		return 3;
	}
	/* --state: counters, blocks and greylisting from db_path, as in
	 * the daemon (and they count this message). */
	struct store *st = NULL;
	if (state) {
		struct txn *probe = eng_txn_new(e);
		char err[512];
		st = store_open(eng_cfg(probe)->db_path, err, sizeof(err));
		eng_txn_free(probe);
		if (st == NULL)
			fprintf(stderr, "mxwarden check: database: %s\n", err);
		eng_set_store(e, st);
	}
	rc = check_run(e, &a, in, stdout);
	if (in != stdin)
		fclose(in);
	eng_free(e);
	store_close(st);
	return rc;
}

/* cmd_reload - validate config and rules, then signal the daemon. */
static int
cmd_reload(const struct opts *o)
{
	struct rules *r;
	struct cfg *c;
	char err[512];

	log_init("mxwarden", 1, LOG_LVL_WARN);
	if ((c = load_all(o, 0, &r)) == NULL) {
		fprintf(stderr, "mxwarden reload: not sent: fix the errors above\n");
		return 1;
	}
	rules_free(r);
	int rc = reload_send(c->pid_file, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "mxwarden reload: %s\n", err);
	else
		printf("reload signal sent\n");
	cfg_free(c);
	return rc == 0 ? 0 : 1;
}

/* cmd_db - `mxwarden db ...` on the configured db_path. */
static int
cmd_db(const struct opts *o, int argc, char **argv)
{
	char errs[16384];
	struct cfg *c = cfg_load(o->conf, o->over, o->nover, errs, sizeof(errs));
	int rc;

	if (c == NULL) {
		fputs(errs, stderr);
		return 2;
	}
	log_init("mxwarden", 1, LOG_LVL_WARN);
	rc = dbcli_main(c->db_path, argc, argv);
	cfg_free(c);
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o = { .conf = NULL };
	const char *cmd = NULL;
	int ch;

	/* Global options come first; a command word ends them. */
	while ((ch = getopt(argc, argv, "+fc:o:h")) != -1) {
		switch (ch) {
		case 'f': o.foreground = 1; break;
		case 'c': o.conf = optarg; break;
		case 'o':
			if (o.nover == MXW_MAX_OVERRIDES) {
				fprintf(stderr, "mxwarden: too many -o\n");
				return 2;
			}
			o.over[o.nover++] = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		cmd = argv[optind++];
	/* Options may also follow the command word. */
	while (cmd != NULL && optind < argc && argv[optind][0] == '-' &&
	    argv[optind][1] != '-') {
		if (strcmp(argv[optind], "-c") == 0 && optind + 1 < argc) {
			o.conf = argv[optind + 1];
			optind += 2;
		} else if (strcmp(argv[optind], "-o") == 0 && optind + 1 < argc &&
		    o.nover < MXW_MAX_OVERRIDES) {
			o.over[o.nover++] = argv[optind + 1];
			optind += 2;
		} else if (strcmp(argv[optind], "-f") == 0) {
			o.foreground = 1;
			optind++;
		} else {
			break;
		}
	}
	if (o.conf == NULL && access(MXW_DEFAULT_CONF, R_OK) == 0)
		o.conf = MXW_DEFAULT_CONF;
	if (cmd == NULL || strcmp(cmd, "run") == 0)
		return cmd_daemon(&o, 0);
	if (strcmp(cmd, "proxy") == 0)
		return cmd_daemon(&o, 1);
	if (strcmp(cmd, "configtest") == 0)
		return cmd_configtest(&o);
	if (strcmp(cmd, "reload") == 0)
		return cmd_reload(&o);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(&o, argc - optind + 1, argv + optind - 1);
	if (strcmp(cmd, "db") == 0)
		return cmd_db(&o, argc - optind, argv + optind);
	if (strcmp(cmd, "defaults") == 0) {
		struct cfg *c = cfg_load(NULL, NULL, 0, NULL, 0);
		if (c == NULL)
			return 1;
		cfg_print(c, 1, stdout);
		cfg_free(c);
		return 0;
	}
	if (strcmp(cmd, "version") == 0) {
		printf("mxwarden %s\n", MXW_VERSION);
		return 0;
	}
	fprintf(stderr, "mxwarden: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return 2;
}
