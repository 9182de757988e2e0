-- POST /api/auth/jwt with one session's bearer token (BENCH_TOKEN): a
-- session lookup and an Ed25519 signature on every request.
function init(args)
  token = os.getenv("BENCH_TOKEN")
end

function request()
  return wrk.format("POST", nil, { ["Authorization"] = "Bearer " .. token }, nil)
end
