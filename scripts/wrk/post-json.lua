-- POST WRK_BODY as JSON.
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("NON2XX %d\n", e.status + e.connect + e.read + e.write + e.timeout))
end
