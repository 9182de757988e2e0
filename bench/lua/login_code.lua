-- login-code with right codes prepared beforehand (bench.py writes the
-- "email code" pairs to BENCH_PAIRS); each of the 2 threads takes every
-- other line, so no code is used twice. BENCH_CODE_FIELD names the code's
-- field ("code"; the peer row's Better Auth sign-in calls it "otp").
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end

function init(args)
  local field = os.getenv("BENCH_CODE_FIELD") or "code"
  pairs_ = {}
  local i = 0
  for line in io.lines(os.getenv("BENCH_PAIRS")) do
    if i % 2 == tid then
      local email, code = line:match("(%S+) (%S+)")
      pairs_[#pairs_ + 1] = string.format('{"email":"%s","%s":"%s"}', email, field, code)
    end
    i = i + 1
  end
  n = 0
end

function request()
  n = n + 1
  local body = pairs_[n] or '{"email":"exhausted@bench.test"}'
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end
