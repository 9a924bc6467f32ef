-- Refresh-token redemption chains: each answer carries the next refresh token. Each thread
-- keeps a queue of them, started from WRK_TOKENS (one per line), split among the threads.
local next_id = 1
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  queue = {}
  local i = 0
  local n = tonumber(os.getenv("WRK_THREADS") or "1")
  for line in io.lines(os.getenv("WRK_TOKENS")) do
    if i % n == id - 1 then table.insert(queue, line) end
    i = i + 1
  end
end

function request()
  local token = table.remove(queue) or "exhausted"
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"},
    "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  local token = string.match(body, '"refresh_token":"([^"]+)"')
  if token then table.insert(queue, token) end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("NON2XX %d\n", e.status + e.connect + e.read + e.write + e.timeout))
end
