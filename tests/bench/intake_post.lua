-- intake_post.lua - wrk script of tests/bench/intake.sh: POST /v1/events with the 1 KB
-- event of intake_events.py, every event with an id of its own.
-- Environment:
--   BENCH_TEMPLATE  file holding the event on one line with the id written '@ID@'
--   BENCH_RUN       a prefix unique to this run (ids are RUN-THREAD-COUNTER[-I])
--   BENCH_BATCH     0 or unset: one event per request (application/cloudevents+json),
--                   answered 202; N > 0: a JSON array of N events per request
--                   (application/cloudevents-batch+json), answered 207 with per-event
--                   results of which those with status "accepted" are counted
--   BENCH_TOKEN     the bearer token
-- At the end it prints lines 'RESULT key=value ...' for intake.sh to read: requests,
-- accepted events, answers by status, p50/p99/max latency in microseconds.

local threads = {}
local counter = 0

-- Runs in the main Lua state, once per thread.
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local function read_template()
  local path = os.getenv("BENCH_TEMPLATE") or error("BENCH_TEMPLATE is not set")
  local f = assert(io.open(path, "rb"))
  local text = f:read("*l")
  f:close()
  local i, j = text:find("@ID@", 1, true)
  assert(i, "no @ID@ in " .. path)
  return text:sub(1, i - 1), text:sub(j + 1)
end

-- Runs in each thread's Lua state.
function init(args)
  head, tail = read_template()
  batch = tonumber(os.getenv("BENCH_BATCH") or "0") or 0
  prefix = (os.getenv("BENCH_RUN") or tostring(os.time())) .. "-" .. tostring(tid) .. "-"
  wrk.method = "POST"
  wrk.path = "/v1/events"
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
  wrk.headers["Content-Type"] = batch > 0 and "application/cloudevents-batch+json"
    or "application/cloudevents+json"
  accepted = 0
  answers = 0
  statuses = {}
  parts = {}
end

function request()
  counter = counter + 1
  local id = prefix .. counter
  local body
  if batch > 0 then
    for i = 1, batch do
      parts[i] = head .. id .. "-" .. i .. tail
    end
    body = "[" .. table.concat(parts, ",", 1, batch) .. "]"
  else
    body = head .. id .. tail
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  answers = answers + 1
  statuses[status] = (statuses[status] or 0) + 1
  if batch > 0 then
    if status == 207 then
      local _, n = body:gsub('"status":%s*"accepted"', "")
      accepted = accepted + n
    end
  elseif status == 202 then
    accepted = accepted + 1
  end
end

-- Runs in the main Lua state after the run.
function done(summary, latency, requests)
  local acc, ans, by = 0, 0, {}
  for _, t in ipairs(threads) do
    acc = acc + (t:get("accepted") or 0)
    ans = ans + (t:get("answers") or 0)
    for s, n in pairs(t:get("statuses") or {}) do
      by[s] = (by[s] or 0) + n
    end
  end
  local list = {}
  for s, n in pairs(by) do
    list[#list + 1] = tostring(s) .. ":" .. tostring(n)
  end
  table.sort(list)
  io.write(string.format("RESULT requests=%d answers=%d accepted=%d duration_us=%d " ..
    "socket_errors=%d p50_us=%d p99_us=%d max_us=%d statuses=%s\n",
    summary.requests, ans, acc, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max,
    #list > 0 and table.concat(list, ",") or "none"))
end
