-- common.lua - helpers for the miltertest scripts of milter_sendmail.sh.
--
-- The shell runs: miltertest -D SOCK=inet:PORT@127.0.0.1 -D DIR=... -s X.lua
-- Each check prints "check ok NAME" or "check fail NAME: DETAIL"; the
-- shell turns them into TAP. A Lua error ends the script (the shell then
-- reports the script as failed).

function check(cond, name, detail)
	if cond then
		print("check ok " .. name)
	else
		print("check fail " .. name .. ": " .. tostring(detail or ""))
	end
end

-- expect - a protocol step returned nil (no error) and the reply wanted.
function expect(err, conn, want, name)
	if err ~= nil then
		check(false, name, "error " .. tostring(err))
		return false
	end
	local got = mt.getreply(conn)
	check(got == want, name, "reply " .. tostring(got) .. ", wanted " .. tostring(want))
	return got == want
end

-- open - connect (bounded retries) and send the connection facts with
-- Sendmail's connect macros.
function open(host, ip, macros)
	local conn = mt.connect(SOCK, 40, 0.25)
	if conn == nil then
		error("cannot connect to " .. SOCK)
	end
	mt.macro(conn, SMFIC_CONNECT, table.unpack(macros))
	local err = mt.conninfo(conn, host, ip)
	if err ~= nil then
		error("conninfo: " .. err)
	end
	return conn
end
