-- intake_hello.lua - wrk script of tests/bench/intake.sh for the hello-world baseline:
-- only prints 'RESULT key=value ...' (requests, p50/p99/max latency in microseconds) at
-- the end, in the same form as intake_post.lua.
function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d answers=%d accepted=%d duration_us=%d " ..
    "socket_errors=%d p50_us=%d p99_us=%d max_us=%d statuses=%s\n",
    summary.requests, summary.requests, summary.requests - summary.errors.status,
    summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, "n/a"))
end
