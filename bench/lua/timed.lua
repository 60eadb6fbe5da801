-- POST a template body, its %ID% replaced by a token unique to each request.
-- wrk args: template file, token (unique to the run), then any "Name: value" headers. Prints a BENCH-JSON
-- summary line.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local head, tail, prefix, n

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local body = f:read("*a")
  f:close()
  head, tail = body:match("^(.-)%%ID%%(.*)$")
  prefix = args[2] .. string.format("%03d", id)
  n = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  for i = 3, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
end

function request()
  n = n + 1
  return wrk.format(nil, nil, nil, head .. prefix .. string.format("%08d", n) .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "microseconds": %d, "connect": %d, "read": %d, "write": %d, "status": %d, '
      .. '"timeout": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
