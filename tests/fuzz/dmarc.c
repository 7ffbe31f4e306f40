/*
 * dmarc.c - fuzz target: the From field parser of DMARC
 * (policy/dmarc.c) and the public suffix list (policy/psl.c).
 *
 * Input: NUL-separated fields: a From field value (raw, possibly
 * folded), the text of a public suffix list, and a domain name whose
 * organizational domain is looked up in that list; the From domain
 * found, if any, is looked up too. Small output buffers are tried as
 * well: they must be refused, not overrun.
 */
#include "dmarc.h"
#include "fuzz.h"
#include "psl.h"

/* fuzz_org - the organizational domain of name, into two sizes. */
static void
fuzz_org(const struct psl *p, const char *name)
{
	char out[256], tiny[4];

	if (psl_org_domain(p, name, out, sizeof(out)) == 0 &&
	    strlen(out) > strlen(name))
		abort();	/* longer than the name it came from */
	(void)psl_org_domain(p, name, tiny, sizeof(tiny));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *from = fuzz_next(&data, &size);
	char *list = fuzz_next(&data, &size);
	char *name = fuzz_next(&data, &size);
	char dom[256], tiny[6];
	const char *why;
	struct psl *p = psl_from_text(list);

	if (chk_dmarc_from_domain(from, dom, sizeof(dom), &why) == 0)
		fuzz_org(p, dom);
	(void)chk_dmarc_from_domain(from, tiny, sizeof(tiny), &why);
	fuzz_org(p, name);
	psl_close(p);
	free(from);
	free(list);
	free(name);
	return 0;
}
