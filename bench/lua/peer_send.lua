-- The peer row's send: Better Auth's email-OTP send for a new address on every
-- request, the same address pattern as send_code.lua (a sign-in code is mailed).
-- BENCH_TAG keeps runs apart.
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end

function init(args)
  tag = os.getenv("BENCH_TAG") or "x"
  n = 0
end

function request()
  n = n + 1
  local body = string.format('{"email":"s%s-%d-%d@bench.test","type":"sign-in"}', tag, tid, n)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end
