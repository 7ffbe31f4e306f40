/*
 * config.h - mxwarden.conf: the daemon's settings.
 *
 * One table in config.c (key, type, default, bounds, reloadable, one-line
 * doc) drives parsing, `configtest`, `mxwarden defaults` and the test that
 * every key is documented. A struct cfg is immutable once loaded: a
 * reload builds a new one and the engine swaps snapshots.
 */
#ifndef MXW_CONFIG_H
#define MXW_CONFIG_H

#include <stddef.h>

enum cfg_onerr { CFG_ONERR_TEMPFAIL, CFG_ONERR_ACCEPT };
/* How the proxy tells the backend who the client is. */
enum cfg_forward { CFG_FORWARD_NONE, CFG_FORWARD_XCLIENT, CFG_FORWARD_PROXY_V1,
		   CFG_FORWARD_PROXY_V2 };
/* Lowest TLS version the proxy accepts from clients. */
enum cfg_tls_min { CFG_TLS_1_0, CFG_TLS_1_1, CFG_TLS_1_2, CFG_TLS_1_3 };

struct cfg {
	char	*hostname;
	char	*authserv_id;
	char	*milter_socket;
	int	 milter_timeout;	/* seconds */
	char	*dns_server;
	int	 dns_timeout_ms;
	char	*dns_unbound_conf;
	char	*db_path;
	char	*rules_file;
	char	*local_rules_file;
	char	*public_suffix_list;
	char	*user;
	char	*pid_file;
	int	 on_dns_error;		/* enum cfg_onerr */
	int	 on_db_error;		/* enum cfg_onerr */
	int	 log_level;		/* enum log_level */
	char	*log_target;		/* "syslog" or "stderr" */
	int	 max_header_bytes;	/* headers kept per message */
	int	 max_body_bytes;	/* body bytes kept for content rules */
	/* SMTP proxy (filter/proxy*.c). */
	char	*proxy_listen;		/* "ADDR:PORT [v6]:PORT ..." */
	char	*proxy_backend;		/* "host:port" */
	int	 proxy_backend_forward;	/* enum cfg_forward */
	int	 proxy_client_timeout;	/* seconds, per command */
	int	 proxy_data_timeout;	/* seconds, per read in DATA */
	int	 proxy_backend_connect_timeout; /* seconds */
	int	 proxy_backend_timeout;	/* seconds, per backend reply */
	int	 proxy_backend_data_timeout; /* seconds, reply to the final dot */
	int	 message_size_limit;	/* bytes */
	int	 proxy_spool_memory;	/* bytes kept in memory per message */
	char	*proxy_spool_dir;	/* temporary files beyond that */
	int	 proxy_max_connections;
	int	 proxy_max_recipients;
	int	 proxy_backend_reuse;	/* idle backend connections kept */
	char	*proxy_listen_tls;	/* implicit-TLS listeners (465) */
	char	*tls_cert_file;		/* PEM chain; "": no STARTTLS */
	char	*tls_key_file;
	int	 tls_min_version;	/* enum cfg_tls_min */
	char	*proxy_trusted_upstreams; /* CIDRs allowed to send PROXY */
	int	 proxy_max_per_ip;	/* connections from one address */
	int	 proxy_greet_pause_ms;	/* 0: none */
	char	*proxy_bare_lf_exempt;	/* CIDRs whose bare LF is repaired */
	char	*proxy_quarantine_header; /* header added for quarantine */
	int	 proxy_backend_tls;	/* 1: STARTTLS to the backend */
	int	 proxy_backend_chunking; /* 1: BDAT when the backend offers it */
	char	*proxy_backend_tls_ca_file; /* PEM trust anchors; "": unverified */
	char	*proxy_backend_tls_name; /* name to match; "": proxy_backend's host */
	char	*path;			/* file it came from, for messages */
};

/*
 * cfg_load - read path (NULL: defaults only), then apply overrides
 * ("key=value" strings, e.g. from -o). Every error is written to errs as
 * "file:line: reason" lines (one per error, all of them). Returns the
 * config, or NULL when there was any error.
 */
struct cfg	*cfg_load(const char *path, char *const *overrides, size_t nover,
		    char *errs, size_t errlen);
void		 cfg_free(struct cfg *c);

/* cfg_print_defaults - the documented table as a sample config. */
void		 cfg_print(const struct cfg *c, int with_docs, void *fp);

/* cfg_key_count / cfg_key_name - walk the table (the man-page test). */
size_t		 cfg_key_count(void);
const char	*cfg_key_name(size_t i);

#endif
