//! Why a send failed and what to change (`mail::diagnose`), per cause.
//! Placeholders: `{at}` (server:port), `{server}`, `{port}`, `{sec}`
//! (SMTP_SECURITY), `{t}` (SMTP_TIMEOUT_SECS), `{raw}` (the server's reply),
//! `{from}`, `{user}`, `{provider}` (SMTP_PROVIDER), `{provider_name}`,
//! `{steps}` (where to get an authorisation code), `{other_port}`.

super::table! {
    CauseText {
        /// A diagnosis on one line, after the raw reply: `{why}`, `{fix}`.
        Line => ("原因：{why} 解决：{fix}", "cause: {why} fix: {fix}"),
        OtherPort => (
            "换另一个端口试试：SMTP_PORT={port} 且 SMTP_SECURITY={sec}（465 为 tls，587 为 starttls）",
            "try the other port: SMTP_PORT={port} with SMTP_SECURITY={sec} (465 is tls, 587 is starttls)",
        ),
        DnsWhy => (
            "找不到主机 {server}（DNS 查询失败）。",
            "the host {server} cannot be found (DNS lookup failed).",
        ),
        DnsFixPreset => (
            "{server} 是 SMTP_PROVIDER={provider} 预设的主机，拼写无误：请检查本机的 DNS 设置（/etc/resolv.conf）和网络能否访问外网。",
            "{server} is the host SMTP_PROVIDER={provider} presets, so it is spelt right: check this machine's DNS (/etc/resolv.conf) and that it can reach the internet.",
        ),
        DnsFixTyped => (
            "检查 SMTP_SERVER 的拼写（只写主机名，不带 smtp:// 或端口），以及本机的 DNS 设置。",
            "check the spelling of SMTP_SERVER (a host name only, no smtp:// or port) and this machine's DNS.",
        ),
        RefusedWhy => (
            "连接 {at} 被拒绝（connection refused）：那里没有服务在监听，或被防火墙/服务商拒绝。",
            "the connection to {at} was refused: nothing listens there, or a firewall or the provider rejects it.",
        ),
        RefusedFix => (
            "检查 SMTP_SERVER 与 SMTP_PORT；{other_port}。",
            "check SMTP_SERVER and SMTP_PORT; {other_port}.",
        ),
        ConnectTimeoutWhy => (
            "连接 {at} 超时（{t} 秒内无响应）：端口很可能被防火墙或服务商封锁（云主机常封 25 端口）。",
            "connecting to {at} timed out (no answer within {t} s): the port is probably blocked by a firewall or the provider (cloud hosts often block 25).",
        ),
        TimeoutWhy => (
            "{at} 没有及时回应（超时，SMTP_TIMEOUT_SECS={t}）：端口可能被防火墙或服务商封锁，或安全模式与端口不匹配。",
            "{at} did not answer in time (timeout, SMTP_TIMEOUT_SECS={t}): the port may be blocked by a firewall or the provider, or the security mode does not match the port.",
        ),
        OtherPortFix => ("{other_port}。", "{other_port}."),
        ReplyTimeoutWhy => (
            "{at} 已连接并在对话，但 {t} 秒内没有回应这条命令（超时）。",
            "{at} was connected and talking, but did not answer this command within {t} s (timeout).",
        ),
        ReplyTimeoutFix => (
            "服务器可能过载或在限制本机：稍后再试；若经常发生，调大 SMTP_TIMEOUT_SECS，或向服务商确认这个账号可以用 SMTP 发信。",
            "the server may be overloaded or holding this client back: try again later; if it keeps happening, raise SMTP_TIMEOUT_SECS or ask the provider whether this account may send over SMTP.",
        ),
        GreetingTimeoutWhyTls => (
            "{at} 接受了 TCP 连接，但 {t} 秒内既没有回应 TLS 握手也没有发来问候（greeting）。",
            "{at} accepted the TCP connection but neither answered the TLS handshake nor sent a greeting within {t} s.",
        ),
        GreetingTimeoutWhy => (
            "{at} 接受了 TCP 连接，但 {t} 秒内没有发来问候（greeting）。",
            "{at} accepted the TCP connection but sent no greeting within {t} s.",
        ),
        GreetingTimeoutFixTls => (
            "该端口可能是 STARTTLS 端口（587/25）：改用 SMTP_SECURITY=starttls，或把端口改为 465；否则服务器过载或中间有设备拦住了连接。",
            "this port may expect STARTTLS (587/25): set SMTP_SECURITY=starttls, or use port 465; otherwise the server is overloaded or something in between holds the connection.",
        ),
        GreetingTimeoutFix => (
            "该端口可能是隐式 TLS 端口（465）：改用 SMTP_SECURITY=tls；否则服务器过载或中间有设备拦住了连接。",
            "this port may expect implicit TLS (465): set SMTP_SECURITY=tls; otherwise the server is overloaded or something in between holds the connection.",
        ),
        MismatchWhy => (
            "安全模式与端口不匹配：SMTP_SECURITY={sec}，端口 {port}，但服务器说的是另一种（{raw}）。465 是隐式 TLS，587 和 25 是 STARTTLS。",
            "the security mode does not match the port: SMTP_SECURITY={sec} on port {port}, but the server speaks the other kind ({raw}). 465 is implicit TLS, 587 and 25 are STARTTLS.",
        ),
        MismatchFixTls => (
            "对 587/25 端口用 SMTP_SECURITY=starttls，或改用 465 端口。",
            "use SMTP_SECURITY=starttls for ports 587/25, or use port 465.",
        ),
        MismatchFix => (
            "对 465 端口用 SMTP_SECURITY=tls，或改用 587 端口配 starttls。",
            "use SMTP_SECURITY=tls for port 465, or port 587 with starttls.",
        ),
        StartTlsWhy => (
            "{at} 不提供 STARTTLS，而 SMTP_SECURITY={sec} 要求加密。",
            "{at} does not offer STARTTLS, and SMTP_SECURITY={sec} requires encryption.",
        ),
        StartTlsFix => (
            "改用 465 端口配 SMTP_SECURITY=tls；只有在可信网络上才用 SMTP_SECURITY=opportunistic。",
            "use port 465 with SMTP_SECURITY=tls; use SMTP_SECURITY=opportunistic only on a trusted network.",
        ),
        AuthAfterTlsWhy => (
            "服务器只在 TLS 加密之后才提供登录（AUTH），而这个连接没有加密。",
            "the server offers login (AUTH) only after TLS, and this connection is not encrypted.",
        ),
        AuthAfterTlsFix => (
            "设置 SMTP_SECURITY=starttls（587）或 SMTP_SECURITY=tls（465）。",
            "set SMTP_SECURITY=starttls (587) or SMTP_SECURITY=tls (465).",
        ),
        AuthNotOfferedWhy => (
            "服务器没有提供 authmail 支持的登录方式（AUTH PLAIN 或 LOGIN）。",
            "the server offers no login method authmail speaks (AUTH PLAIN or LOGIN).",
        ),
        AuthNotOfferedFix => (
            "检查 SMTP_SERVER 与端口；若是不需要登录的中继，请不要设置 SMTP_USER。",
            "check SMTP_SERVER and the port; for a relay that needs no login, leave SMTP_USER unset.",
        ),
        CertificateWhy => (
            "服务器证书未通过验证：{raw}",
            "the server's certificate failed verification: {raw}",
        ),
        CertificateFix => (
            "确认 SMTP_SERVER（{server}）就是证书上的名字；私有中继用自己的 CA 时，把该 CA 的 PEM 文件设为 SMTP_CA_FILE。",
            "make sure SMTP_SERVER ({server}) is the name on the certificate; for a private relay with its own CA, point SMTP_CA_FILE at that CA's PEM file.",
        ),
        AuthFailedWhy => (
            "服务器拒绝了登录（认证失败，535）。",
            "the server refused the login (authentication failed, 535).",
        ),
        AuthFailedFixCode => (
            "{provider_name}的 SMTP_PASSWORD 必须是邮箱的授权码，不是登录密码。获取授权码：{steps}，把授权码填入 SMTP_PASSWORD。",
            "{provider_name} needs the mailbox's authorisation code (授权码) in SMTP_PASSWORD, not the login password. To get one: {steps}; put that code in SMTP_PASSWORD.",
        ),
        AuthFailedFixGmail => (
            "Gmail 需要应用专用密码（app password）：Google 账号 → 安全 → 两步验证 → 应用专用密码，把它填入 SMTP_PASSWORD。",
            "Gmail needs an app password, not the account password: Google Account → Security → 2-Step Verification → App passwords; put it in SMTP_PASSWORD.",
        ),
        AuthFailedFix => (
            "检查 SMTP_USER 与 SMTP_PASSWORD，并确认该邮箱已开启 SMTP；QQ、163、腾讯企业邮要用授权码（可设置 SMTP_PROVIDER 获得具体提示）。",
            "check SMTP_USER and SMTP_PASSWORD, and that SMTP is enabled for the mailbox; QQ, 163 and Exmail need an authorisation code (set SMTP_PROVIDER for specific hints).",
        ),
        SenderRefusedWhy => (
            "服务器拒绝了发件人 {from}：很多服务商（QQ、163、腾讯企业邮）只允许以登录的邮箱本身发信。",
            "the server refused the sender {from}: many providers (QQ Mail, 163, Exmail) accept mail only from the logged-in mailbox.",
        ),
        SenderRefusedFixUser => (
            "让 SMTP_FROM 等于 SMTP_USER（{user}），或不设置 SMTP_FROM。",
            "make SMTP_FROM equal to SMTP_USER ({user}), or leave SMTP_FROM unset.",
        ),
        SenderRefusedFix => (
            "把 SMTP_FROM 设为该服务器允许的发件地址。",
            "set SMTP_FROM to an address this server accepts as sender.",
        ),
        SpamWhy => (
            "服务商把邮件内容判为垃圾邮件。",
            "the provider judged the content to be spam.",
        ),
        SpamFix => (
            "模板保持简短朴素，标题不要带推广字眼。",
            "keep templates short and plain, with no promotional words in the subject.",
        ),
        ThrottledWhy => (
            "服务商在限流或灰名单（临时拒绝）：会自动重试。",
            "the provider is throttling or greylisting (a temporary refusal): it will be retried.",
        ),
        ThrottledFix => (
            "若持续出现，请降低发送频率。",
            "if it persists, lower the send rate.",
        ),
        RecipientWhy => (
            "服务器拒收这个收件地址（不存在或不可用）。",
            "the server refused the recipient address (unknown or unavailable).",
        ),
        RecipientFix => (
            "确认地址拼写正确、邮箱存在。",
            "check that the address is spelled right and the mailbox exists.",
        ),
        NameQq => ("QQ 邮箱", "QQ Mail"),
        Name163 => ("163 邮箱", "163 Mail"),
        NameGmail => ("Gmail", "Gmail"),
        NameExmail => ("腾讯企业邮箱", "Tencent Exmail"),
        StepsQq => (
            "QQ 邮箱网页版：设置 → 账户 → 开启 POP3/SMTP 或 IMAP/SMTP 服务 → 生成授权码",
            "QQ Mail web: 设置 (Settings) → 账户 (Account) → enable POP3/SMTP or IMAP/SMTP → 生成授权码 (generate authorisation code)",
        ),
        Steps163 => (
            "163 邮箱网页版：设置 → POP3/SMTP/IMAP → 开启 IMAP/SMTP 或 POP3/SMTP 服务 → 新增授权密码",
            "163 Mail web: 设置 (Settings) → POP3/SMTP/IMAP → enable IMAP/SMTP or POP3/SMTP → 新增授权密码 (new authorisation code)",
        ),
        StepsExmail => (
            "腾讯企业邮箱网页版：设置 → 账户 → 开启安全登录后 → 生成新密码（客户端专用密码）",
            "Exmail web: 设置 (Settings) → 账户 (Account) → with secure login on, 生成新密码 (generate a client password)",
        ),
    }
}
