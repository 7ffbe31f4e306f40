/*
 * ratelimit.h - rate limits from the rule files ("ratelimit NAME KEY
 * LIMIT[/WINDOW] [reply]", see rules.h). Keys: ip, net (/24, /64),
 * sender, sender_domain, auth_user (messages, counted at MAIL),
 * conn_per_ip (connections, at connect), msg_per_conn (MAIL commands in
 * one connection) and rcpt_per_msg (recipients of one message, at
 * RCPT). The event that goes past LIMIT gets 451 4.7.1 (or the rule's
 * reply) and RATE_LIMITED (detail: the rule's name); LIMIT events pass.
 * Windowed counts are store counters "rate:NAME", atomic across
 * processes. Internal and whitelisted clients are exempt, except from
 * auth_user limits.
 */
#ifndef MXW_RATELIMIT_H
#define MXW_RATELIMIT_H

#include "txn.h"

struct store;

/* chk_ratelimit_run - apply the limits of stage ev (CONNECT, MAIL or
 * RCPT). Returns the action (CONTINUE when within every limit). */
enum verdict_action chk_ratelimit_run(struct txn *t, struct store *s,
	    enum txn_event ev, struct verdict *v);

#endif
