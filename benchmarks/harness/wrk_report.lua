-- wrk script for the benchmark: a client's headers (Basic auth, JSON), and at the end one line
-- "WRKJSON {...}" that measure.sh reads (wrk gives latencies in microseconds; written in ms).
local credentials = os.getenv("BENCH_AUTH")
  or "Basic QUNhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTp0b2tlbg=="
wrk.headers["Authorization"] = credentials
wrk.headers["Accept"] = "application/json"
wrk.headers["User-Agent"] = "bench-wrk/4.1 (twilio-migration-gateway yardstick)"

done = function(summary, latency, requests)
  local errors = summary.errors
  local socket_errors = errors.connect + errors.read + errors.write + errors.timeout
  local seconds = summary.duration / 1e6
  local function ms(us) return us / 1000 end
  io.write(string.format(
    "WRKJSON {\"requests\":%d,\"duration_s\":%.3f,\"bytes\":%d,\"rps\":%.1f," ..
    "\"p50_ms\":%.3f,\"p75_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f," ..
    "\"mean_ms\":%.3f,\"err_connect\":%d,\"err_read\":%d,\"err_write\":%d," ..
    "\"err_timeout\":%d,\"err_status\":%d,\"errors\":%d}\n",
    summary.requests, seconds, summary.bytes, summary.requests / seconds,
    ms(latency:percentile(50)), ms(latency:percentile(75)), ms(latency:percentile(90)),
    ms(latency:percentile(99)), ms(latency.max), ms(latency.mean),
    errors.connect, errors.read, errors.write, errors.timeout, errors.status,
    socket_errors + errors.status))
end
