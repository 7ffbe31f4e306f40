/*
 * proxy.h - the SMTP proxy front end: mxwarden listens for SMTP itself
 * and relays each transaction, in lockstep, to a backend MTA (SPEC §5).
 *
 * filter/main.c: p = proxy_open(cfg) while still root (binds the
 * listeners), then drops privileges, then proxy_run(p, engine), which
 * blocks until SIGTERM or SIGINT, then proxy_free(p).
 */
#ifndef MXW_PROXY_H
#define MXW_PROXY_H

#include <stddef.h>

struct cfg;
struct eng;
struct proxy;

/*
 * proxy_open - bind and listen on every address of cfg->proxy_listen.
 * Returns the listener set, or NULL with a reason in err (bad address,
 * address in use, no permission).
 */
struct proxy	*proxy_open(const struct cfg *cfg, char *err, size_t errlen);

/*
 * proxy_check_config - what proxy_open() would refuse in cfg's proxy
 * settings, without binding: the address lists, the TLS files (loaded:
 * readable, the key matching the certificate, the backend's CA file),
 * proxy_listen_tls without a certificate. For `configtest`. 0, or -1
 * with a reason in err.
 */
int		 proxy_check_config(const struct cfg *cfg, char *err,
		    size_t errlen);

/*
 * proxy_run - accept clients and run their sessions (event-driven, on a
 * pool of workers) until SIGTERM or SIGINT (blocked in every thread and
 * taken through a signalfd here; SIGHUP asks for a reload). At the stop
 * the listeners close, idle sessions are woken and ended, and sessions
 * get a bounded time to end.
 * The engine is borrowed. Returns 0, or -1 with a reason when sessions
 * were still running at the end of the wait (the caller must then exit
 * without eng_free()).
 */
int		 proxy_run(struct proxy *p, struct eng *e, char *err, size_t errlen);

void		 proxy_free(struct proxy *p);

#endif
