-- send-code with a solved challenge on every request: bench/challenge.py
-- writes "id nonce" lines to BENCH_SOLVED; each of the 2 threads takes every
-- other line, so no challenge is used twice.
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end

function init(args)
  tag = os.getenv("BENCH_TAG") or "x"
  solved = {}
  local i = 0
  for line in io.lines(os.getenv("BENCH_SOLVED")) do
    if i % 2 == tid then
      local id, nonce = line:match("(%S+) (%S+)")
      solved[#solved + 1] = string.format('"challenge":{"id":"%s","nonce":"%s"}', id, nonce)
    end
    i = i + 1
  end
  n = 0
end

function request()
  n = n + 1
  local challenge = solved[n] or '"challenge":{"id":"exhausted","nonce":"0"}'
  local body = string.format('{"email":"c%s-%d-%d@bench.test","purpose":"register",%s}', tag, tid, n, challenge)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end
