-- POST WRK_BODY (a form) with Authorization WRK_AUTH when set; counts every answer that is
-- not a 2xx, which the load driver refuses.
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("NON2XX %d\n", e.status + e.connect + e.read + e.write + e.timeout))
end
