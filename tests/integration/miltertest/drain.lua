-- drain.lua - a session that is open, idle between two commands, when
-- the milter is told to stop: the shell sends SIGTERM while this script
-- sleeps. The milter drops the idle session (the MTA then applies its
-- default action) and exits cleanly; the next command gets no reply.
dofile(DIR .. "/common.lua")
local conn = open("client.test", "127.0.0.9", {"j", "mx.sendmail.test"})
mt.helo(conn, "client.test")
expect(mt.mailfrom(conn, "<ok@sender.test>"), conn, SMFIR_CONTINUE,
	"MAIL before the stop continues")
mt.sleep(8)
mt.set_timeout(5)
local err = mt.mailfrom(conn, "<ok@sender.test>")
check(err ~= nil, "MAIL after the stop is not answered", err)
print("done")
