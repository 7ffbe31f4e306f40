-- mxwarden state store, migration 3: an index of the network entries.
--
-- A client's block is looked up at every connection: its own IP by the
-- primary key, then the entries that are networks (a key with '/', an
-- administrator's CIDR block), through this index. Harvest control
-- blocks single IPs, thousands of them under a dictionary attack; no
-- lookup reads them all.
CREATE INDEX IF NOT EXISTS entries_nets ON entries (kind, key)
	WHERE instr(key, '/') > 0;
