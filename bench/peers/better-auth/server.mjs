// The bench's "peer" row: Better Auth with its email-OTP plugin, set up the way
// its docs show, on the same footing as authmail in bench/bench.py:
//   - SQLite through better-sqlite3 (the driver Better Auth's docs use), WAL and
//     synchronous=NORMAL like authmail's pool, a fresh database file per start;
//   - every OTP mailed for real through a pooled nodemailer SMTP transport to the
//     bench's smtp-sink (no TLS), with as many connections as authmail's pool;
//   - Node's http server through toNodeHandler, on 127.0.0.1.
// Environment: PORT, DB_PATH, SMTP_PORT (SMTP_HOST 127.0.0.1, SMTP_POOL_SIZE 4).
//
// Besides Better Auth's own routes under /api/auth, GET /bench/stats answers
// {queued, sent, failed, pending}: mails handed to nodemailer, mails the sink
// accepted, mails that failed, mails still on their way, so the bench can
// check that the mail really went out.
import http from "node:http";
import Database from "better-sqlite3";
import nodemailer from "nodemailer";
import { betterAuth } from "better-auth";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";
import { emailOTP } from "better-auth/plugins";

const port = Number(process.env.PORT || 3000);
const dbPath = process.env.DB_PATH || "peer.db";

const db = new Database(dbPath);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.pragma("busy_timeout = 5000");

const transport = nodemailer.createTransport({
  pool: true,
  maxConnections: Number(process.env.SMTP_POOL_SIZE || 4),
  maxMessages: Infinity, // keep each connection for the whole run, as authmail's pool does
  host: process.env.SMTP_HOST || "127.0.0.1",
  port: Number(process.env.SMTP_PORT || 25),
  secure: false,
  ignoreTLS: true, // smtp-sink offers no TLS; neither does authmail's bench config
});

const stats = { queued: 0, sent: 0, failed: 0, pending: 0 };

function mail(email, otp) {
  stats.queued++;
  stats.pending++;
  return transport
    .sendMail({
      from: "bench@bench.test",
      to: email,
      subject: `Your sign-in code: ${otp}`,
      text: `Your sign-in code is ${otp}. It expires in 5 minutes.`,
    })
    .then(
      () => stats.sent++,
      (err) => {
        stats.failed++;
        console.error("mail failed:", err.message);
      },
    )
    .finally(() => stats.pending--);
}

export const auth = betterAuth({
  baseURL: `http://127.0.0.1:${port}`,
  secret: process.env.BETTER_AUTH_SECRET || "bench-secret-key-0123456789abcdef0123456789",
  database: db,
  telemetry: { enabled: false },
  logger: { level: "error" },
  // The rate limiter is switched off, as authmail's limits are (set to 0) in
  // the bench: the row measures the code path, not the limiter refusing
  // requests. (Better Auth enables it in production by default, 3 requests a
  // minute per address on the OTP routes.)
  rateLimit: { enabled: false },
  plugins: [
    emailOTP({
      // Better Auth's docs for this option: "It is recommended to not await the
      // email sending to avoid timing attacks." So the send is started here and
      // not awaited: the response does not wait for the SMTP dialogue, as
      // authmail's send-code does not (it queues the mail for its worker). The
      // mail still goes out in the same process while the load runs, and
      // /bench/stats lets the bench check that every one reached the sink.
      async sendVerificationOTP({ email, otp }) {
        void mail(email, otp);
      },
    }),
  ],
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const handler = toNodeHandler(auth);
const server = http.createServer((req, res) => {
  if (req.url === "/bench/stats") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(stats));
    return;
  }
  handler(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(port, "127.0.0.1", () => console.log(`better-auth peer on 127.0.0.1:${port}`));

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    server.close();
    transport.close();
    db.close();
    process.exit(0);
  });
}
