/*
 * proxy_io.c - fuzz target: the proxy's bounded line reader
 * (filter/proxy_io.c) on what a client sends.
 *
 * Input: one control byte, then the bytes the peer sends over a socket
 * pair. Control bits 0-1 pick the line limit (command, text, reply
 * line, or 8 bytes). Without bit 2 everything is sent at once and read
 * with a timeout, as a blocking reader would; with it the bytes arrive
 * in pieces of (bits 3-7) + 1 and are read without waiting, as the
 * event loop does (lines resumed after PL_AGAIN). The line buffer is
 * exactly limit + 1 bytes. Reading must end at EOF.
 */
#include <fcntl.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "proxy_io.h"

#define FUZZ_IO_MAX	65536	/* below a socket pair's buffer: no blocking */

/* fuzz_drain - read lines until one is not complete; its status. */
static enum proxy_line_status
fuzz_drain(struct proxy_io *io, char *line, size_t max, int timeout_ms)
{
	enum proxy_line_status st;
	size_t len;

	do {
		len = (size_t)-1;
		st = proxy_io_read_line(io, line, max + 1, max, &len,
		    timeout_ms);
		if (st <= PL_NUL && (len > max || strlen(line) > len))
			abort();	/* a length beyond the limit or the text */
		(void)proxy_line_status_name(st);
	} while (st <= PL_NUL);
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t maxes[] = { PROXY_CMD_LINE_MAX - 2,
	    PROXY_TEXT_LINE_MAX - 2, PROXY_REPLY_LINE_MAX, 8 };
	struct proxy_io io;
	int sv[2];

	/* the io's end is non-blocking, as proxy_io_init requires */
	if (size < 1 || size > FUZZ_IO_MAX ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 0;
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) != 0)
		abort();
	size_t max = maxes[data[0] & 3];
	size_t piece = (size_t)(data[0] >> 3) + 1;
	int nowait = data[0] & 4;
	char *line = xmalloc(max + 1);
	enum proxy_line_status st = PL_AGAIN;
	size_t off = 1;

	proxy_io_init(&io, sv[0], 1000);
	if (!nowait) {
		if (write(sv[1], data + 1, size - 1) != (ssize_t)(size - 1))
			abort();
		shutdown(sv[1], SHUT_WR);
		st = fuzz_drain(&io, line, max, 1000);
	} else {
		while (st == PL_AGAIN) {
			size_t n = size - off < piece ? size - off : piece;
			if (n == 0)
				shutdown(sv[1], SHUT_WR);
			else if (write(sv[1], data + off, n) != (ssize_t)n)
				abort();
			off += n;
			st = fuzz_drain(&io, line, max, PROXY_IO_NOWAIT);
			if (st == PL_AGAIN && n == 0)
				abort();	/* waits although the peer closed */
		}
	}
	if (st != PL_EOF)
		abort();
	proxy_io_close(&io);
	close(sv[1]);
	free(line);
	return 0;
}
