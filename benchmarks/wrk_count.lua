-- wrk script for the memory phase: the bench client headers (as harness/wrk_report.lua)
-- and a bounded number of requests. The thread stops after WRK_COUNT responses (one thread is
-- used) and touches WRK_DONE_FILE; wrk itself only ends at -d, so the driver (run.sh) sends it
-- SIGINT as soon as that file appears. At most CONNS in-flight requests finish after the stop.
local auth = os.getenv("BENCH_AUTH") or "Basic QUNhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTp0b2tlbg=="
wrk.headers["Authorization"] = auth
wrk.headers["Accept"] = "application/json"
wrk.headers["User-Agent"] = "bench-wrk/4.1 (twilio-migration-gateway yardstick)"

local limit = tonumber(os.getenv("WRK_COUNT") or "10000")
local done_file = os.getenv("WRK_DONE_FILE")
local seen = 0

response = function(status, headers, body)
  seen = seen + 1
  if seen == limit then
    wrk.thread:stop()
    if done_file then
      local f = io.open(done_file, "w")
      if f then f:write(seen, "\n"); f:close() end
    end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKCOUNT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout + e.status))
end
