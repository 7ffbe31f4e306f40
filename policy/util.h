/*
 * util.h - memory wrappers, bounded string helpers and invariant checks.
 *
 * Every allocation in mxwarden goes through x*alloc(): they succeed or
 * abort the process (an out-of-memory filter cannot decide anything
 * safely). String helpers never overflow and report truncation.
 * Thread safety: all functions are reentrant.
 */
#ifndef MXW_UTIL_H
#define MXW_UTIL_H

#include <stddef.h>
#include <stdarg.h>

void	*xmalloc(size_t n);
void	*xcalloc(size_t nmemb, size_t size);
void	*xrealloc(void *p, size_t n);
char	*xstrdup(const char *s);
char	*xstrndup(const char *s, size_t n);
/* xasprintf - allocate a formatted string; aborts on OOM. */
char	*xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * str_copy - copy src into dst of size dstlen, always NUL-terminated.
 * Returns 0, or -1 when src did not fit (dst then holds a truncated copy).
 */
int	 str_copy(char *dst, const char *src, size_t dstlen);

/* str_fmt - snprintf that returns 0, or -1 on error or truncation. */
int	 str_fmt(char *dst, size_t dstlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* str_lower - lower-case ASCII letters in place; returns s. */
char	*str_lower(char *s);

/* str_trim - strip leading and trailing white space in place; returns
 * a pointer into s. */
char	*str_trim(char *s);

/* str_is_subdomain - non-zero when name equals suffix or ends in
 * ".suffix" (ASCII case-insensitive). */
int	 str_is_subdomain(const char *name, const char *suffix);

/* util_mono_ms - CLOCK_MONOTONIC in milliseconds (for deadlines). */
long long util_mono_ms(void);

/* PANIC - a broken internal invariant: log and abort (core dump). */
void	 util_panic(const char *file, int line, const char *fmt, ...)
	    __attribute__((noreturn, format(printf, 3, 4)));
#define PANIC(...)	util_panic(__FILE__, __LINE__, __VA_ARGS__)

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

#endif
