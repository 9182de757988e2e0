-- Password login for one account: argon2id on every request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"pw@bench.test","password":"bench password 1"}'
