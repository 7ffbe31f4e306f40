/*
 * mime_test.c - the MIME decoder, RFC 2047 header decoding
 * (policy/mime.c) and meta expressions (policy/meta.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "meta.h"
#include "mime.h"

/* decode - run a whole message body through a decoder, fed in chunks
 * of chunk bytes (exercises lines split across chunks). */
static struct mime *
decode(const char *hdrs, const char *body, size_t chunk, size_t max)
{
	struct mime *m = mime_new(hdrs, max);
	size_t len = strlen(body);

	for (size_t off = 0; off < len; off += chunk)
		mime_feed(m, (const unsigned char *)body + off,
		    len - off < chunk ? len - off : chunk);
	mime_finish(m);
	return m;
}

static const char *
text(const struct mime *m)
{
	size_t len;
	return mime_text(m, &len);
}

/* expect_text - the text of a message decoded as decode() does */
static void
expect_text(const char *hdrs, const char *body, size_t chunk, const char *want)
{
	struct mime *m = decode(hdrs, body, chunk, 1 << 20);

	assert_string_equal(text(m), want);
	mime_free(m);
}

static void
test_plain(void **state)
{
	(void)state;
	struct mime *m = decode("", "hello\r\nworld\r\n", 3, 1 << 20);
	assert_string_equal(text(m), "hello\nworld\n");
	assert_int_equal(mime_flags(m), 0);
	size_t rl;
	assert_int_equal(strlen(mime_raw(m, &rl)), 14);
	mime_free(m);
}

/* HTML: block tags (and unknown ones) end words, inline tags do not, as
 * a reader sees the text: a word split by <b> or <span> stays whole. */
static void
test_html_words(void **state)
{
	(void)state;
	expect_text("Content-Type: text/html\n",
	    "<p>one</p><P>two</P><b>Vi</b>agra <SPAN class=x>V</SPAN><span>I"
	    "</span>AGRA x<br/>y a<!-- c -->b <font color=red>fr</font>ee"
	    " <td>c1</td><td>c2</td> <o:p>of</o:p>fice <blink>m</blink>n"
	    " <a href=\"h\">li</a>nk <spanner>p</spanner>q\n", 7,
	    " one  two Viagra VIAGRA x y ab free  c1  c2  office  m n link  p q\n");
}

/* Character references: every HTML 4 name (in another case too), decimal
 * and hexadecimal ones; what is no reference stays text. Tags end where
 * a browser ends them: a quoted attribute value may hold a '>', an
 * unterminated quote hides the rest, an unquoted value (even x="y) ends
 * at '>'. Only a script or style element hides its contents, not
 * <scripts>. */
static void
test_html_refs(void **state)
{
	(void)state;
	expect_text("Content-Type: text/html\n",
	    "<p title=\"a > b\" alt='c>d'>Caf&eacute; cr&egrave;me&nbsp;: 9&euro;"
	    " &hellip; l&rsquo;offre &AElig;&szlig; &NBSP;&AMP; &#233;&#xE9;&#XE9;"
	    " &bogus; AT&T &#xD800; &#0; &#12ab; &#x110000; &amp &eacute</p>"
	    "<a href=x>li</a>nk <a href=x=\"y>see</a> <a=\"x>y\"><b title=\">no\">"
	    "<scripts>shown</scripts><Script\ttype=x>no"
	    "</script><style/>no</style><img alt=\"never closed>hidden\n", 9,
	    " Caf\xc3\xa9 cr\xc3\xa8me : 9\xe2\x82\xac \xe2\x80\xa6 l\xe2\x80\x99"
	    "offre \xc3\x86\xc3\x9f  & \xc3\xa9\xc3\xa9\xc3\xa9 &bogus; AT&T"
	    " &#xD800; &#0; &#12ab; &#x110000; &amp &eacute link see y\"> shown      ");
}

/* Characters a reader does not see are dropped from the text, so that
 * they cannot split a word for a pattern: soft hyphen, zero-width
 * space, non-joiner, joiner, word joiner, U+FEFF; as entities too. */
static void
test_invisible(void **state)
{
	(void)state;
	expect_text("Content-Type: text/plain; charset=utf-8\n",
	    "Vi\xc2\xad" "ag\xe2\x80\x8bra c\xe2\x80\x8c" "a\xe2\x80\x8ds"
	    "\xe2\x81\xa0h \xef\xbb\xbfok \xe2\x80\x8e" "kept\n", 4,
	    "Viagra cash ok \xe2\x80\x8e" "kept\n");
	expect_text("Content-Type: text/html\n",
	    "Vi&shy;ag&#8203;r&zwnj;a c&#x200D;a&zwj;sh &#173;x\n", 5,
	    "Viagra cash x\n");
}

/* The spaces a reader sees as spaces, but \s without /u does not match,
 * become plain spaces: U+00A0 (also &nbsp;), U+1680, U+2000..U+200A,
 * U+202F, U+205F, U+3000. Other characters stay. */
static void
test_spaces(void **state)
{
	(void)state;
	expect_text("Content-Type: text/plain; charset=utf-8\n",
	    "cheap\xc2\xa0pills a\xe2\x80\x83" "b c\xe3\x80\x80" "d e\xe2\x80\xaf"
	    "f g\xe2\x81\x9fh i\xe1\x9a\x80j caf\xc3\xa9 \xe2\x80\x90 \xe2\x80\xb0\n",
	    3, "cheap pills a b c d e f g h i j caf\xc3\xa9 \xe2\x80\x90 \xe2\x80\xb0\n");
	expect_text("Content-Type: text/html\n", "a&nbsp;b&#160;c&#x2009;d\n", 4,
	    "a b c d\n");
}

static void
test_qp_and_charset(void **state)
{
	(void)state;
	struct mime *m = decode("Content-Type: text/plain; charset=iso-8859-1\n"
	    "Content-Transfer-Encoding: quoted-printable\n",
	    "caf=E9 cr=\r\n=E8me  \r\nsoft=\nbreak\n", 5, 1 << 20);
	assert_string_equal(text(m), "caf\xc3\xa9 cr\xc3\xa8me\nsoftbreak\n");
	mime_free(m);
}

static void
test_base64_multipart_nested(void **state)
{
	(void)state;
	const char *body =
	    "preamble\n"
	    "--outer\n"
	    "Content-Type: multipart/alternative; boundary=\"inner\"\n"
	    "\n"
	    "--inner\n"
	    "Content-Type: text/plain; charset=utf-8\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "c2VuZCBi\n"
	    "aXRjb2luIG5vdw==\n"
	    "--inner\n"
	    "Content-Type: text/html\n"
	    "\n"
	    "<html><style>p{x}</style><p>Hello&nbsp;&amp; <b>bye</b>&#233;</p></html>\n"
	    "--inner--\n"
	    "--outer\n"
	    "Content-Type: application/pdf; name=\"=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?=\"\n"
	    "Content-Disposition: attachment\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "JVBERi0=\n"
	    "--outer\n"
	    "Content-Type: text/plain\n"
	    "Content-Disposition: attachment; filename*=utf-8''evil%2Eexe\n"
	    "\n"
	    "not body text\n"
	    "--outer--\n"
	    "epilogue\n";
	struct mime *m = decode("Content-Type: multipart/mixed; boundary=outer\n",
	    body, 7, 1 << 20);
	const char *t = text(m);
	assert_non_null(strstr(t, "send bitcoin now"));
	assert_non_null(strstr(t, "Hello & "));
	assert_non_null(strstr(t, "bye"));
	assert_non_null(strstr(t, "\xc3\xa9"));
	assert_null(strstr(t, "p{x}"));
	assert_null(strstr(t, "<b>"));
	assert_null(strstr(t, "preamble"));
	assert_null(strstr(t, "epilogue"));
	assert_null(strstr(t, "not body text"));
	assert_int_equal(mime_nattach(m), 2);
	assert_string_equal(mime_attach_name(m, 0), "r\xc3\xa9sum\xc3\xa9.pdf");
	assert_string_equal(mime_attach_type(m, 0), "application/pdf");
	assert_string_equal(mime_attach_name(m, 1), "evil.exe");
	assert_int_equal(mime_flags(m) & MIME_F_BROKEN, 0);
	mime_free(m);
}

static void
test_broken(void **state)
{
	(void)state;
	/* multipart without a boundary: read as text, flagged. */
	struct mime *m = decode("Content-Type: multipart/mixed\n", "just text\n",
	    100, 1 << 20);
	assert_string_equal(text(m), "just text\n");
	assert_true(mime_flags(m) & MIME_F_BROKEN);
	mime_free(m);
	/* unterminated multipart and junk in base64 */
	m = decode("Content-Type: multipart/mixed; boundary=b\n",
	    "--b\nContent-Transfer-Encoding: base64\n\naGVs*bG8=\n", 4, 1 << 20);
	assert_string_equal(text(m), "hello");
	assert_true(mime_flags(m) & MIME_F_BROKEN);
	mime_free(m);
	/* an over-long line without LF and a body over the bound */
	char *big = malloc(100001);
	memset(big, 'x', 100000);
	big[100000] = '\0';
	m = decode("", big, 4096, 1000);
	size_t len;
	mime_text(m, &len);
	assert_true(len <= 1000);
	mime_raw(m, &len);
	assert_int_equal(len, 1000);
	assert_true(mime_flags(m) & MIME_F_TRUNCATED);
	mime_free(m);
	free(big);
	/* unknown charset: bytes pass through */
	m = decode("Content-Type: text/plain; charset=x-no-such-charset\n",
	    "abc\xff\n", 100, 1 << 20);
	assert_string_equal(text(m), "abc\xff\n");
	mime_free(m);
}

static void
test_rfc2047(void **state)
{
	static const struct { const char *in, *want; } cases[] = {
		{ "plain text", "plain text" },
		{ "=?UTF-8?B?SsO8cmdlbg==?= <j@x.example>", "J\xc3\xbcrgen <j@x.example>" },
		{ "=?iso-8859-1?Q?You_have_w?= =?iso-8859-1?Q?on_=E9?=", "You have won \xc3\xa9" },
		{ "a =?utf-8?q?b?= c", "a b c" },
		{ "=?koi8-r?B?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },
		{ "=?utf-8?x?bad?=", "=?utf-8?x?bad?=" },
		{ "=?utf-8?q?unterminated", "=?utf-8?q?unterminated" },
		{ "folded\r\n line", "folded line" },
		{ "=?UTF-8*en?Q?lang?=", "lang" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = mime_decode_header(cases[i].in, 4096);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\"", i, got);
		free(got);
	}
	char *cut = mime_decode_header("0123456789", 4);
	assert_true(strlen(cut) <= 4);
	free(cut);
}

static int
has(void *arg, const char *name)
{
	return strstr((const char *)arg, name) != NULL;
}

static void
test_meta(void **state)
{
	static const struct { const char *expr, *syms; int want; } cases[] = {
		{ "A", "A", 1 },
		{ "A", "B", 0 },
		{ "!A", "B", 1 },
		{ "A && B", "A B", 1 },
		{ "A && B", "A", 0 },
		{ "A || B", "B", 1 },
		{ "A || B && C", "A", 1 },		/* && binds tighter */
		{ "(A || B) && C", "A", 0 },
		{ "!(A || B)", "", 1 },
		{ "!!A", "A", 1 },
		{ "SPF_FAIL&&!DKIM_PASS", "SPF_FAIL", 1 },
	};
	char err[256];
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct meta_expr *m = meta_compile(cases[i].expr, err, sizeof(err));
		if (m == NULL)
			fail_msg("case %zu: %s", i, err);
		if (meta_eval(m, has, (void *)cases[i].syms) != cases[i].want)
			fail_msg("case %zu: %s with [%s]", i, cases[i].expr,
			    cases[i].syms);
		meta_free(m);
	}
	struct meta_expr *m = meta_compile("A && (B || A) && !C", err, sizeof(err));
	assert_int_equal(meta_nsyms(m), 3);
	meta_free(m);
	static const char *const bad[] = { "", "A &&", "A B", "(A", "a", "A & B",
	    "A || || B" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(meta_compile(bad[i], err, sizeof(err)));
	/* Too long: more than META_MAX_TERMS items. */
	char big[2048] = "A";
	size_t o = 1;
	for (int i = 0; i < 80; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, " && A");
	assert_null(meta_compile(big, err, sizeof(err)));
	assert_non_null(strstr(err, "too long"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_html_words),
		cmocka_unit_test(test_html_refs),
		cmocka_unit_test(test_invisible),
		cmocka_unit_test(test_spaces),
		cmocka_unit_test(test_qp_and_charset),
		cmocka_unit_test(test_base64_multipart_nested),
		cmocka_unit_test(test_broken),
		cmocka_unit_test(test_rfc2047),
		cmocka_unit_test(test_meta),
	};
	return cmocka_run_group_tests_name("mime", tests, NULL, NULL);
}
