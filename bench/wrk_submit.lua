-- wrk script of measurement 1: every request is a different student's check-in.
--
--   wrk -t2 -c32 -d20s -s bench/wrk_submit.lua http://127.0.0.1:PORT -- TOKENS FIRST PATH THREADS RUN
--
-- TOKENS: a file of JWT access tokens, one per student and line; FIRST: the index of
-- the first token this run uses; PATH: the URL path (with query string) to POST to;
-- THREADS: wrk's -t; RUN: a digit that keeps the client ids of different runs apart.
-- Thread k takes tokens FIRST+k, FIRST+k+THREADS, ...  Each body carries a client_id
-- made of RUN and the token's index.  The statuses and the ids of the
-- acknowledged reports are written as JSON to $BENCH_WRK_OUT when wrk is done.

local threads = {}

function setup(thread)
  thread:set("thread_number", #threads)
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
  end
  step = tonumber(args[4])
  index = tonumber(args[2]) + thread_number
  path = args[3]
  run = tonumber(args[5])
  statuses = {}
  ids = {}
  wrapped = 0
end

function request()
  local i = index
  index = index + step
  if i >= #tokens then
    wrapped = wrapped + 1
  end
  local token = tokens[(i % #tokens) + 1]
  local body = string.format(
    '{"slot":"evening","temperature":"36.5","whereabouts":"on_campus","client_id":"00000000-0000-4000-8%03d-%012d"}', run, i)
  return wrk.format("POST", path, {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 or status == 201 then
    local id = string.match(body, '"id":%s*(%d+)')
    if id then
      ids[#ids + 1] = id
    end
  end
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("BENCH_WRK_OUT"), "w")
  local merged, codes, all_ids, wraps = {}, {}, {}, 0
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      merged[code] = (merged[code] or 0) + n
    end
    for _, id in ipairs(thread:get("ids")) do
      all_ids[#all_ids + 1] = id
    end
    wraps = wraps + thread:get("wrapped")
  end
  for code, n in pairs(merged) do
    codes[#codes + 1] = string.format('"%d": %d', code, n)
  end
  out:write("{")
  out:write(string.format('"duration_us": %d, "requests": %d, "bytes": %d, ', summary.duration, summary.requests, summary.bytes))
  out:write(string.format('"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ',
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
  out:write(string.format('"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}, ',
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  out:write(string.format('"wrapped": %d, ', wraps))
  out:write('"statuses": {' .. table.concat(codes, ", ") .. '}, ')
  out:write('"ids": [' .. table.concat(all_ids, ", ") .. ']')
  out:write("}\n")
  out:close()
end
