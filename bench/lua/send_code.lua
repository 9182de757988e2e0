-- A send-code for a new address on every request (authmail's register: a
-- code is mailed). BENCH_TAG keeps runs apart; BENCH_DELAY_MS paces each
-- connection; BENCH_FIELDS replaces the fields after the address (the peer
-- row sends Better Auth's '"type":"sign-in"' to its email-OTP route).
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end

function init(args)
  tag = os.getenv("BENCH_TAG") or "x"
  pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
  fields = os.getenv("BENCH_FIELDS") or '"purpose":"register"'
  n = 0
end

function request()
  n = n + 1
  local body = string.format('{"email":"s%s-%d-%d@bench.test",%s}', tag, tid, n, fields)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end

function delay()
  return pause
end
