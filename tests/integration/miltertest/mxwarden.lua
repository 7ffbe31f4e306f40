-- mxwarden.lua - mxwarden driven like Sendmail drives a milter, against
-- the test DNS (tests/dns/zones: 127.0.0.10 has FCrDNS good10.iprev.test;
-- mx.sender.test has an MX, nx.sender.test does not exist, nullmx.sender.test
-- has a null MX).
dofile(DIR .. "/common.lua")

local conn = open("good10.iprev.test", "127.0.0.10",
	{"j", "mx.mxw.test", "{daemon_name}", "MTA"})
check(mt.getreply(conn) == SMFIR_CONTINUE, "connect continues")
check(mt.test_action(conn, SMFIF_CHGHDRS), "negotiated: change headers")
check(mt.test_option(conn, SMFIP_HDR_LEADSPC), "negotiated: leading space")
expect(mt.helo(conn, "good10.iprev.test"), conn, SMFIR_CONTINUE, "HELO continues")

mt.macro(conn, SMFIC_MAIL, "i", "MXQ1", "{mail_mailer}", "esmtp")
expect(mt.mailfrom(conn, "<user@mx.sender.test>"), conn, SMFIR_CONTINUE,
	"MAIL from a domain with an MX continues")
mt.macro(conn, SMFIC_RCPT, "{rcpt_mailer}", "error", "i", "MXQ1")
expect(mt.rcptto(conn, "<unknown@local.test>"), conn, SMFIR_CONTINUE,
	"RCPT the MTA refused ({rcpt_mailer} error) continues")
mt.macro(conn, SMFIC_RCPT, "{rcpt_mailer}", "smtp", "i", "MXQ1")
expect(mt.rcptto(conn, "<u@local.test>"), conn, SMFIR_CONTINUE, "RCPT continues")
mt.header(conn, "From", "<user@mx.sender.test>")
mt.header(conn, "To", "<u@local.test>")
mt.header(conn, "Subject", "miltertest")
mt.header(conn, "Date", "Mon, 1 Jan 2024 00:00:00 +0000")
mt.header(conn, "Message-ID", "<mt1@mx.sender.test>")
mt.header(conn, "Authentication-Results", "mx.mxw.test; spf=pass smtp.mailfrom=forged.test")
mt.header(conn, "Authentication-Results", "other.test; spf=fail")
expect(mt.eoh(conn), conn, SMFIR_CONTINUE, "EOH continues")
expect(mt.bodystring(conn, "Hello.\r\n"), conn, SMFIR_CONTINUE, "body continues")
expect(mt.eom(conn), conn, SMFIR_ACCEPT, "EOM accepts")
check(mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results"),
	"forged Authentication-Results deleted")
local ar = mt.getheader(conn, "Authentication-Results", 0) or ""
check(string.find(ar, "^%s*mx%.mxw%.test;") ~= nil, "our Authentication-Results added", ar)
check(string.find(ar, "iprev=pass", 1, true) ~= nil, "A-R: iprev=pass for 127.0.0.10", ar)
check(mt.eom_check(conn, MT_HDRADD, "X-Spam-Status") or
	mt.eom_check(conn, MT_HDRINSERT, "X-Spam-Status"), "X-Spam-Status added")

-- Second message on the connection: rejected senders.
mt.macro(conn, SMFIC_MAIL, "i", "MXQ2")
expect(mt.mailfrom(conn, "<user@nx.sender.test>"), conn, SMFIR_REPLYCODE,
	"MAIL from a nonexistent domain rejected")
expect(mt.mailfrom(conn, "<user@nullmx.sender.test>"), conn, SMFIR_REPLYCODE,
	"MAIL from a null-MX domain rejected")
expect(mt.mailfrom(conn, "<user@mx.sender.test>"), conn, SMFIR_CONTINUE,
	"a good MAIL after rejected ones continues")
check(mt.abort(conn) == nil, "abort accepted")
mt.disconnect(conn)
print("done")
