-- Paid retries for wrk: every request carries the next pre-minted credential
-- (one paying `Authorization` value per line of the file given after `--`),
-- so each one pays exactly once; with several wrk threads each takes its own
-- share of the lines. A thread stops when its share runs out.
-- Prints `paid=<2xx> other=<non-2xx> sent=<credentials used> of <minted>`.
--
--   wrk -t1 -c32 -d8s -s paid.lua http://127.0.0.1:8092/paid -- creds.txt [/path [threads]]

local credentials = {}
minted, sent, paid, other = 0, 0, 0, 0
local path = "/paid"

function init(args)
  local thread_count = tonumber(args[3] or "1")
  local n = 0
  for line in io.lines(args[1]) do
    if n % thread_count == thread_index then
      minted = minted + 1
      credentials[minted] = line
    end
    n = n + 1
  end
  if args[2] then path = args[2] end
end

function request()
  if sent >= minted then
    wrk.thread:stop()
    -- wrk still needs a request here; it is never answered once stopped.
    return wrk.format("GET", path)
  end
  sent = sent + 1
  return wrk.format("GET", path, { ["Authorization"] = credentials[sent] })
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    paid = paid + 1
  else
    other = other + 1
  end
end

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local p, o, s, m = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    p = p + thread:get("paid")
    o = o + thread:get("other")
    s = s + thread:get("sent")
    m = m + thread:get("minted")
  end
  io.write(string.format("paid=%d other=%d sent=%d of %d\n", p, o, s, m))
end
