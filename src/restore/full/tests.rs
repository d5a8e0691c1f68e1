use super::*;

/// [`check_command`] on this process's PATH.
fn check(cmd: &str) -> std::result::Result<(), String> {
    check_command(cmd, std::env::var("PATH").ok().as_deref())
}

fn f(path: &str, t: FileType) -> ConfigFile {
    ConfigFile {
        path: path.into(),
        file_type: t,
        ..Default::default()
    }
}

#[test]
fn reroot_refuses_escapes() {
    let r = Path::new("/srv/scratch");
    assert_eq!(
        reroot(r, "/opt/n8n/.env").unwrap(),
        PathBuf::from("/srv/scratch/opt/n8n/.env")
    );
    assert_eq!(
        reroot(Path::new("/"), "/etc/nginx").unwrap(),
        PathBuf::from("/etc/nginx")
    );
    assert!(matches!(
        reroot(r, "/opt/../../etc/passwd"),
        Err(RestoreError::Unsafe(_))
    ));
    assert!(matches!(reroot(r, "opt/n8n"), Err(RestoreError::Unsafe(_))));
}

#[test]
fn top_level_entries() {
    let files = vec![
        f("/opt/n8n/.env", FileType::File),
        f("/etc/letsencrypt", FileType::Directory),
        f("/etc/letsencrypt/live", FileType::Directory),
        f("/etc/letsencrypt/live/x/cert.pem", FileType::Symlink),
        f("/etc/nginx/conf.d/*.conf", FileType::Missing),
    ];
    let top: Vec<&str> = top_level(&files).iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        top,
        [
            "/opt/n8n/.env",
            "/etc/letsencrypt",
            "/etc/nginx/conf.d/*.conf"
        ]
    );
}

#[test]
fn compose_project_names() {
    assert_eq!(normalise_project("n8n").as_deref(), Some("n8n"));
    assert_eq!(
        normalise_project("My N8N.Stack").as_deref(),
        Some("myn8nstack")
    );
    assert_eq!(normalise_project("_-x").as_deref(), Some("x"));
    assert_eq!(normalise_project("..."), None);
    assert_eq!(
        compose_file_name("# c\nname: \"prod-n8n\"  # here\nservices:\n  name: no\n").as_deref(),
        Some("prod-n8n")
    );
    assert_eq!(compose_file_name("services:\n  n8n:\n    name: x\n"), None);
    assert_eq!(compose_file_name("name: ${PROJECT}\n"), None);
}

#[test]
fn commands_that_cannot_run_are_found_before_they_are_needed() {
    assert!(check("sh -c 'true'").is_ok());
    assert!(check("systemctl stop n8n").is_ok() || which("systemctl").is_none());
    assert!(check("FOO=1 sh /nonexistent/x.sh").is_err());
    assert!(check("FOO=1 sh /bin/true").is_ok());
    assert!(check("no-such-program-of-n8n-ark --stop")
        .unwrap_err()
        .contains("not found on the PATH"));
    assert!(check("/nonexistent/stop.sh")
        .unwrap_err()
        .contains("not an executable file"));
    assert!(check("sh /nonexistent/stop.sh")
        .unwrap_err()
        .contains("does not exist"));
    assert!(check("   ").is_err());
    // Shell syntax is not judged.
    assert!(check("cd /opt/n8n && docker compose stop").is_ok());
    assert!(check("if true; then :; fi").is_ok());
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[test]
fn shell_quoting() {
    assert_eq!(shell_quote("restore"), "restore");
    assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
    assert_eq!(shell_quote("it's"), "'it'\\''s'");
    assert_eq!(shell_quote(""), "''");
}

#[tokio::test]
async fn the_health_wait_is_bounded() {
    // A port nobody listens on: the wait ends at the deadline, saying why.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let t0 = Instant::now();
    let e = wait_healthy(&url, t0, t0 + Duration::from_millis(1200))
        .await
        .unwrap_err()
        .to_string();
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(
        e.contains(&url) && e.contains("did not answer 200 within 1 s"),
        "{e}"
    );
    assert!(wait_healthy("not a url", t0, t0).await.is_err());
}

#[test]
fn key_verdicts() {
    let k = |s: &str| Some((s.to_string(), "x".to_string()));
    let s = KeyState {
        backup: k("a"),
        target_now: k("b"),
        n8n_after: k("a"),
    };
    // Full restore with the .env: the database and n8n both use the backup's key.
    assert_eq!(key_verdict(&s, true, true).0, "match");
    // Config only: the target's database (b) under the backup's key (a).
    assert_eq!(key_verdict(&s, false, true).0, "mismatch");
    // Database only, n8n keeps the target's key.
    let s2 = KeyState {
        n8n_after: k("b"),
        ..s.clone()
    };
    assert_eq!(key_verdict(&s2, true, false).0, "mismatch");
    let s3 = KeyState {
        backup: None,
        ..s2.clone()
    };
    assert_eq!(key_verdict(&s3, true, false).0, "unknown");
    assert_eq!(key_verdict(&s3, false, false).0, "not_applicable");
}
