use super::*;

fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let vars = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_source(&Source::from_map(vars))
}

/// The SMTP settings of `pairs`, with a password when there is a user.
fn smtp(pairs: &[(&str, &str)]) -> SmtpSettings {
    let mut pairs = pairs.to_vec();
    if pairs.iter().any(|(k, _)| *k == "SMTP_USER") {
        pairs.push(("SMTP_PASSWORD", "authorisation-code"));
    }
    settings(&pairs).unwrap().smtp.unwrap()
}

#[test]
fn defaults_need_no_settings() {
    let s = settings(&[]).unwrap();
    assert!(s.dev_mailbox());
    assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(s.public_url, "http://127.0.0.1:8080");
    assert_eq!(s.database_url.expose(), "sqlite://authmail.db");
    assert_eq!(s.codes.ttl_secs, 300);
    assert_eq!(s.codes.length, 6);
    assert_eq!(s.http.timeout.as_secs(), 10);
    assert_eq!(s.http.idle.as_secs(), 60, "idle keep-alive");
}

#[test]
fn port_and_security_derive_from_each_other() {
    let base = [
        ("SMTP_SERVER", "mail.example.com"),
        ("SMTP_FROM", "a@example.com"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        let s = smtp(&v);
        (s.port, s.security)
    };
    assert_eq!(with(&[]), (587, Security::StartTls));
    assert_eq!(with(&[("SMTP_PORT", "465")]), (465, Security::Tls));
    assert_eq!(with(&[("SMTP_PORT", "25")]), (25, Security::Opportunistic));
    assert_eq!(with(&[("SMTP_PORT", "2525")]), (2525, Security::StartTls));
    assert_eq!(with(&[("SMTP_SECURITY", "tls")]), (465, Security::Tls));
    assert_eq!(with(&[("SMTP_SECURITY", "none")]), (25, Security::None));
}

#[test]
fn provider_presets_fill_server_and_explicit_settings_win() {
    let s = smtp(&[("SMTP_PROVIDER", "qq"), ("SMTP_USER", "1@qq.com")]);
    assert_eq!(
        (s.server.as_str(), s.port, s.security),
        ("smtp.qq.com", 465, Security::Tls)
    );
    let s = smtp(&[
        ("SMTP_PROVIDER", "163"),
        ("SMTP_USER", "a@163.com"),
        ("SMTP_PORT", "587"),
    ]);
    assert_eq!(
        (s.server.as_str(), s.port, s.security),
        ("smtp.163.com", 587, Security::StartTls)
    );
    let s = smtp(&[("SMTP_PROVIDER", "gmail"), ("SMTP_USER", "a@gmail.com")]);
    assert_eq!((s.server.as_str(), s.port), ("smtp.gmail.com", 587));
    let s = smtp(&[
        ("SMTP_PROVIDER", "exmail"),
        ("SMTP_USER", "a@corp.com"),
        ("SMTP_SERVER", "relay.corp.com"),
    ]);
    assert_eq!(s.server, "relay.corp.com");
}

#[test]
fn bad_values_name_the_setting() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("CODE_LENGTH", "3")], "CODE_LENGTH"),
        (&[("CODE_TTL_SECS", "abc")], "CODE_TTL_SECS"),
        (&[("CODE_MAX_ATTEMPTS", "21")], "CODE_MAX_ATTEMPTS"),
        (
            &[
                ("SMTP_SERVER", "x.com"),
                ("SMTP_USER", "a@x.com"),
                ("SMTP_PORT", "70000"),
            ],
            "SMTP_PORT",
        ),
        (
            &[
                ("SMTP_SERVER", "x.com"),
                ("SMTP_USER", "a@x.com"),
                ("SMTP_SECURITY", "ssl"),
            ],
            "SMTP_SECURITY",
        ),
        (&[("SMTP_SERVER", "x.com")], "SMTP_FROM"),
        (&[("SMTP_PROVIDER", "yahoo")], "SMTP_PROVIDER"),
        (
            &[
                ("SMTP_SERVER", "x.com"),
                ("SMTP_USER", "a@x.com"),
                ("SMTP_PASSWORD", "p"),
                ("SMTP_PASSWORD_FILE", "/etc/hostname"),
            ],
            "SMTP_PASSWORD_FILE",
        ),
        (
            &[
                ("SMTP_SERVER", "x.com"),
                ("SMTP_USER", "a@x.com"),
                ("SMTP_PASSWORD", "p"),
                ("SMTP_SECURITY", "none"),
            ],
            "SMTP_SECURITY",
        ),
        (&[("MAIL_LANG", "fr")], "MAIL_LANG"),
        (&[("BIND", "nowhere")], "BIND"),
        (&[("TRUSTED_PROXIES", "10.0.0.0/33")], "TRUSTED_PROXIES"),
        (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
        (
            &[("RETRY_BASE_SECS", "10"), ("RETRY_MAX_SECS", "5")],
            "RETRY_MAX_SECS",
        ),
        (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
        (&[("SECRET_KEY", "short")], "SECRET_KEY"),
    ];
    for (pairs, name) in cases {
        let err = settings(pairs).expect_err(name);
        assert_eq!(err.name, *name, "{err}");
    }
}

#[test]
fn clear_text_credentials_only_to_loopback() {
    let s = smtp(&[
        ("SMTP_SERVER", "127.0.0.1"),
        ("SMTP_USER", "a@x.com"),
        ("SMTP_PASSWORD", "p"),
        ("SMTP_SECURITY", "none"),
    ]);
    assert_eq!(s.security, Security::None);
}

#[test]
fn dev_mailbox_only_on_loopback_unless_asked_for() {
    assert!(settings(&[]).unwrap().dev_mailbox());
    assert!(settings(&[("BIND", "[::1]:8080")]).unwrap().dev_mailbox());
    let err = settings(&[("BIND", "0.0.0.0:8080")]).unwrap_err();
    assert_eq!(err.name, "SMTP_SERVER", "{err}");
    let err = settings(&[("DEV_MAILBOX", "off")]).unwrap_err();
    assert_eq!(err.name, "SMTP_SERVER", "{err}");
    let on = settings(&[("BIND", "0.0.0.0:8080"), ("DEV_MAILBOX", "on")]).unwrap();
    assert!(on.dev_mailbox());
    assert_eq!(on.warnings.len(), 1, "a public dev mailbox is warned about");
    let with_smtp = [
        ("BIND", "0.0.0.0:8080"),
        ("SMTP_SERVER", "mail.example.com"),
        ("SMTP_FROM", "a@example.com"),
    ];
    assert!(!settings(&with_smtp).unwrap().dev_mailbox());
    let mut forced = with_smtp.to_vec();
    forced.push(("DEV_MAILBOX", "on"));
    assert!(settings(&forced).unwrap().dev_mailbox(), "on: never SMTP");
    let behind_proxy = settings(&[("PUBLIC_URL", "https://auth.example.com")]).unwrap();
    assert!(behind_proxy.dev_mailbox());
    assert_eq!(behind_proxy.warnings.len(), 1);
    assert_eq!(
        settings(&[("DEV_MAILBOX", "maybe")]).unwrap_err().name,
        "DEV_MAILBOX"
    );
}

#[test]
fn secrets_are_long_and_passwords_come_with_users() {
    let err = settings(&[("ADMIN_TOKEN", "a")]).unwrap_err();
    assert_eq!(err.name, "ADMIN_TOKEN");
    assert!(settings(&[("ADMIN_TOKEN", &"x".repeat(32))]).is_ok());
    let err = settings(&[
        ("SMTP_SERVER", "mail.example.com"),
        ("SMTP_USER", "a@example.com"),
    ])
    .unwrap_err();
    assert_eq!(err.name, "SMTP_PASSWORD", "{err}");
    let err = settings(&[
        ("SMTP_SERVER", "mail.example.com"),
        ("SMTP_USER", "a@example.com"),
        ("SMTP_PASSWORD", "  "),
    ])
    .unwrap_err();
    assert_eq!(
        err.name, "SMTP_PASSWORD",
        "an empty password is no password"
    );
}

#[test]
fn numbers_too_big_for_their_type_are_out_of_range() {
    let err = settings(&[("SMTP_PORT", "70000")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SMTP_PORT: 70000 is out of range (1–65535)"
    );
    assert_eq!(
        err.render(Lang::ZhCn),
        "SMTP_PORT: 70000 超出范围（1–65535）"
    );
    let err = settings(&[("SMTP_PORT", "25x")]).unwrap_err();
    assert_eq!(err.to_string(), r#"SMTP_PORT: "25x" is not a number"#);
    let err = settings(&[("CODE_LENGTH", "99999999999999999999999")]).unwrap_err();
    assert!(err.to_string().contains("out of range (4–10)"), "{err}");
}

#[test]
fn errors_read_in_either_language() {
    let err = settings(&[("MAIL_LANG", "fr")]).unwrap_err();
    assert_eq!(
        err.render(Lang::En),
        r#"MAIL_LANG: "fr" is not one of zh-CN, en"#
    );
    assert!(
        err.render(Lang::ZhCn).contains("不是以下之一"),
        "{}",
        err.render(Lang::ZhCn)
    );
    let err = settings(&[("PUBLIC_URL", "auth.example.com")]).unwrap_err();
    assert!(err.render(Lang::ZhCn).contains("必须以"));
}

#[test]
fn sqlite_urls_name_their_file() {
    let path = |url: &str| DatabaseUrl(url.into()).sqlite_path();
    assert_eq!(path("sqlite://authmail.db"), Some("authmail.db".into()));
    assert_eq!(
        path("sqlite:///var/lib/a.db?mode=rwc"),
        Some("/var/lib/a.db".into())
    );
    assert_eq!(path("postgres://x@y/z"), None);
}

#[test]
fn no_password_in_debug_output() {
    let s = settings(&[
        (
            "DATABASE_URL",
            "postgres://app:hunter2-secret@db.internal/authmail",
        ),
        ("SMTP_SERVER", "mail.example.com"),
        ("SMTP_USER", "a@example.com"),
        ("SMTP_PASSWORD", "smtp-secret-value"),
        ("ADMIN_TOKEN", "admin-token-0123456789abcdef0123456789"),
    ])
    .unwrap();
    let shown = format!("{s:?}");
    for secret in ["hunter2-secret", "smtp-secret-value", "admin-token-0123"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("postgres://app:***@db.internal/authmail"));
    assert_eq!(
        s.database_url.expose(),
        "postgres://app:hunter2-secret@db.internal/authmail"
    );
}

#[test]
fn every_name_read_is_a_known_setting() {
    let full: Vec<(&str, &str)> = vec![
        ("SMTP_SERVER", "mail.example.com"),
        ("SMTP_USER", "a@example.com"),
        ("SMTP_PASSWORD", "p"),
        ("SMTP_FROM_NAME", "A"),
    ];
    let vars = full
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let src = Source::from_map(vars);
    Settings::from_source(&src).unwrap();
    let asked = src.asked.borrow();
    for name in asked.iter() {
        assert!(
            SETTINGS.contains(&name.as_str()),
            "{name} is read but not in SETTINGS"
        );
    }
    for name in SETTINGS {
        // RUST_LOG is read by the logger, not by the settings.
        assert!(
            *name == "RUST_LOG" || asked.contains(*name),
            "{name} is in SETTINGS but never read"
        );
    }
}

#[test]
fn unknown_names_in_the_env_file_stop_start_up() {
    let vars = [("SMTP_PROVIDR", "qq")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let err = Settings::from_source(&Source::from_env_file_map(vars)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SMTP_PROVIDR: not a setting (did you mean SMTP_PROVIDER?)"
    );
}

#[test]
fn trusted_proxies_parse_cidrs_and_plain_addresses() {
    let s = settings(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")]).unwrap();
    assert_eq!(s.limits.trusted_proxies.len(), 3);
}

#[test]
fn a_webhook_url_needs_a_secret_and_neither_is_ever_repeated_in_an_error() {
    const SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    assert!(settings(&[]).unwrap().webhook.is_none());
    let err = settings(&[("WEBHOOK_URL", "https://hooks.example.com/in")]).unwrap_err();
    assert_eq!(err.name, "WEBHOOK_SECRET");
    let malformed = "whsec_c2hvcnQ="; // 5 bytes
    let err = settings(&[("WEBHOOK_SECRET", malformed)]).unwrap_err();
    assert_eq!(err.name, "WEBHOOK_SECRET", "checked even without a URL");
    for lang in [Lang::En, Lang::ZhCn] {
        assert!(
            !err.render(lang).contains("c2hvcnQ"),
            "{}",
            err.render(lang)
        );
    }
    let s = settings(&[
        ("WEBHOOK_URL", "https://u:hunter2@hooks.example.com/in"),
        ("WEBHOOK_SECRET", SECRET),
    ])
    .unwrap();
    let hook = s.webhook.as_ref().unwrap();
    assert_eq!(hook.secret.key(), (0..32).collect::<Vec<u8>>());
    assert!(s.warnings.is_empty(), "https is not warned about");
    let shown = format!("{s:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("AAECAw"),
        "{shown}"
    );
}

#[test]
fn plain_http_to_another_machine_is_a_warning() {
    let secret = (
        "WEBHOOK_SECRET",
        "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    );
    let s = settings(&[("WEBHOOK_URL", "http://10.1.2.3:8000/hooks"), secret]).unwrap();
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert_eq!(s.warnings[0].name, "WEBHOOK_URL");
    let s = settings(&[("WEBHOOK_URL", "http://127.0.0.1:8000/hooks"), secret]).unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn jwt_lifetime_is_bounded_and_the_audience_optional() {
    let s = settings(&[]).unwrap();
    assert_eq!((s.jwt.ttl_secs, s.jwt.audience), (600, None));
    let s = settings(&[("JWT_TTL_SECS", "60"), ("JWT_AUDIENCE", " my-app ")]).unwrap();
    assert_eq!(
        (s.jwt.ttl_secs, s.jwt.audience.as_deref()),
        (60, Some("my-app"))
    );
    for bad in ["59", "86401", "ten"] {
        let err = settings(&[("JWT_TTL_SECS", bad)]).unwrap_err();
        assert_eq!(err.name, "JWT_TTL_SECS", "{bad}");
    }
    let err = settings(&[("JWT_TTL_SECS", "0")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "JWT_TTL_SECS: 0 is out of range (60–86400)"
    );
}
