/*
 * greylist.h - greylisting (off by default; "greylist enable on").
 *
 * The triplet (client /24 or /64, envelope sender, recipient) is
 * deferred (451 4.7.1, GREYLISTED) until "greylist delay" seconds have
 * passed since its first attempt; a retry within "retry_window" after
 * that passes, and the triplet then passes for "expiry" seconds. After
 * "awl_passes" passed triplets the client network is auto-whitelisted
 * for "awl_expiry". Skipped for authenticated, internal and whitelisted
 * clients, and (skip_spf_pass on) when SPF passes for the sender's
 * domain. Store entries "grey" and "awl", counter "awl".
 */
#ifndef MXW_GREYLIST_H
#define MXW_GREYLIST_H

#include "txn.h"

struct store;

#define GREYLIST_DELAY		300
#define GREYLIST_RETRY_WINDOW	(4 * 3600)
#define GREYLIST_EXPIRY		(36 * 86400)
#define GREYLIST_AWL_PASSES	5
#define GREYLIST_AWL_EXPIRY	(36 * 86400)

/* chk_greylist_rcpt - at RCPT, for the newest recipient. */
enum verdict_action chk_greylist_rcpt(struct txn *t, struct store *s,
	    struct verdict *v);

#endif
