-- stub.lua - the milter front end over the scripted engine
-- (tests/tools/milter_stub), driven like Sendmail 8.14+ drives a milter.
-- The stub's trace file is checked by milter_sendmail.sh afterwards.
dofile(DIR .. "/common.lua")

-- Connection 1: a resolved client; two messages, an abort.
local conn = open("client.sendmail.test", "127.0.0.9",
	{"j", "mx.sendmail.test", "_", "client.sendmail.test [127.0.0.9]",
	 "{daemon_name}", "MTA"})
check(mt.getreply(conn) == SMFIR_CONTINUE, "connect continues")
check(mt.test_action(conn, SMFIF_ADDHDRS), "negotiated: add headers")
check(mt.test_action(conn, SMFIF_CHGHDRS), "negotiated: change headers")
check(mt.test_action(conn, SMFIF_QUARANTINE), "negotiated: quarantine")
check(mt.test_option(conn, SMFIP_HDR_LEADSPC), "negotiated: headers with leading space")
check(mt.test_option(conn, SMFIP_NOUNKNOWN), "negotiated: no UNKNOWN step")
check(mt.test_option(conn, SMFIP_RCPT_REJ), "negotiated: rejected recipients too")

expect(mt.helo(conn, "client.sendmail.test"), conn, SMFIR_CONTINUE, "HELO continues")
mt.macro(conn, SMFIC_MAIL, "{auth_authen}", "alice", "{auth_type}", "PLAIN",
	"i", "QID1", "{mail_mailer}", "esmtp")
expect(mt.mailfrom(conn, "<ok@sender.test>"), conn, SMFIR_CONTINUE, "MAIL continues")
mt.macro(conn, SMFIC_RCPT, "{rcpt_mailer}", "error", "i", "QID1")
expect(mt.rcptto(conn, "<nobody@local.test>"), conn, SMFIR_CONTINUE,
	"RCPT refused by the MTA ({rcpt_mailer} error) continues")
mt.macro(conn, SMFIC_RCPT, "{rcpt_mailer}", "smtp", "i", "QID1")
expect(mt.rcptto(conn, "<u@local.test>"), conn, SMFIR_CONTINUE, "RCPT continues")
-- miltertest adds the space after the colon itself (leading-space mode).
mt.header(conn, "From", "<ok@sender.test>")
mt.header(conn, "Authentication-Results", "other.test; spf=pass")
mt.header(conn, "Authentication-Results", "mx.mxw.test; spf=pass smtp.mailfrom=x")
mt.header(conn, "Authentication-Results", "mx.mxw.test;\n\tdkim=pass header.d=x")
mt.header(conn, "Subject", " leading space")
expect(mt.eoh(conn), conn, SMFIR_CONTINUE, "EOH continues")
expect(mt.bodystring(conn, "hello\r\n"), conn, SMFIR_CONTINUE, "body continues")
expect(mt.eom(conn), conn, SMFIR_ACCEPT, "EOM accepts")
check(mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results"),
	"forged Authentication-Results deleted")
check(mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results",
	" mx.mxw.test;\n\tstub=pass", 0),
	"our Authentication-Results inserted at the top, with its space")
check(mt.eom_check(conn, MT_HDRADD, "X-Spam-Status",
	" No, score=0.0 required=5.0 tests=STUB_ENGINE"), "X-Spam-Status added")
local seen = mt.getheader(conn, "X-Stub-Seen", 0) or ""
check(string.find(seen, "name=client.sendmail.test helo=client.sendmail.test from=<ok@sender.test> rcpts=1 hdrs=5 body=7 auth=alice", 1, true),
	"engine saw name, HELO, sender, one recipient, headers, body, auth", seen)

-- A second message on the same connection: quarantined.
mt.macro(conn, SMFIC_MAIL, "i", "QID2")
expect(mt.mailfrom(conn, "<ok2@sender.test>"), conn, SMFIR_CONTINUE, "second MAIL continues")
mt.macro(conn, SMFIC_RCPT, "{rcpt_mailer}", "smtp", "i", "QID2")
mt.rcptto(conn, "<u@local.test>")
mt.header(conn, "X-Stub", "quarantine")
mt.eoh(conn)
mt.bodystring(conn, "x\r\n")
expect(mt.eom(conn), conn, SMFIR_ACCEPT, "quarantined message accepted")
check(mt.eom_check(conn, MT_QUARANTINE, "mxwarden: STUB_QUARANTINE"),
	"quarantine requested with the deciding symbol")
check(mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results"),
	"quarantined message gets its headers too")

-- A third, aborted (RSET).
mt.macro(conn, SMFIC_MAIL, "i", "QID3")
mt.mailfrom(conn, "<aborted@sender.test>")
mt.rcptto(conn, "<u@local.test>")
check(mt.abort(conn) == nil, "abort accepted")
mt.disconnect(conn)

-- Connection 2: Sendmail's unresolved-name form, replies.
conn = open("[127.0.0.10]", "127.0.0.10", {"j", "mx.sendmail.test"})
check(mt.getreply(conn) == SMFIR_CONTINUE, "second connection continues")
mt.helo(conn, "client2.test")
expect(mt.mailfrom(conn, "<reject@sender.test>"), conn, SMFIR_REPLYCODE,
	"MAIL rejected with a reply code")
expect(mt.mailfrom(conn, "<tempfail@sender.test>"), conn, SMFIR_REPLYCODE,
	"MAIL tempfailed with a reply code")
expect(mt.mailfrom(conn, "<discard@sender.test>"), conn, SMFIR_DISCARD,
	"MAIL discarded")
expect(mt.mailfrom(conn, "<ok@sender.test>"), conn, SMFIR_CONTINUE,
	"MAIL after discard continues")
expect(mt.rcptto(conn, "<reject@local.test>"), conn, SMFIR_REPLYCODE,
	"RCPT rejected")
expect(mt.rcptto(conn, "<u@local.test>"), conn, SMFIR_CONTINUE,
	"next RCPT continues")
mt.header(conn, "X-Stub", "accept-early")
expect(mt.eoh(conn), conn, SMFIR_CONTINUE, "early accept continues to EOM")
if mt.test_option(conn, SMFIP_SKIP) then
	expect(mt.bodystring(conn, "body\r\n"), conn, SMFIR_SKIP,
		"early accept skips the rest of the body")
else
	check(true, "early accept skips the rest of the body (MTA has no SKIP)")
end
expect(mt.eom(conn), conn, SMFIR_ACCEPT, "early accept: EOM accepts")
check(mt.eom_check(conn, MT_HDRADD, "X-Spam-Status"),
	"early accept: headers still added")

mt.mailfrom(conn, "<ok@sender.test>")
mt.rcptto(conn, "<u@local.test>")
mt.header(conn, "X-Stub", "reject-eom")
mt.eoh(conn)
mt.bodystring(conn, "x\r\n")
expect(mt.eom(conn), conn, SMFIR_REPLYCODE, "EOM reject has a reply code")
check(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.26",
	"Unauthenticated email is not accepted"), "EOM reject: 550 5.7.26 text")
check(not mt.eom_check(conn, MT_HDRINSERT), "EOM reject: no header edits")
mt.disconnect(conn)

-- Connection 3: no usable address from libmilter, {client_addr} instead.
conn = open("v6.client.test", "unspec",
	{"j", "mx.sendmail.test", "{client_addr}", "IPv6:2001:db8::5",
	 "{client_port}", "2525"})
check(mt.getreply(conn) == SMFIR_CONTINUE, "connect from {client_addr} continues")
mt.helo(conn, "reject.helo.test")
check(mt.getreply(conn) == SMFIR_REPLYCODE, "HELO rejected with a reply code")
mt.disconnect(conn)
print("done")
