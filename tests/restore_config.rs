//! `n8n-ark restore config`: a real n8n_config backup of a tree shaped like a
//! server's (.env, compose file, nginx with its sites-enabled links, Let's
//! Encrypt with its live/ links into archive/), restored by the binary under
//! a scratch root and compared entry by entry; and manifests written by hand
//! that try to write outside the root, refused before anything is written.
mod common;

use common::{ok_json, rt, stderr, Ark};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use store_format::contents::{ConfigFile, Contents, FileType};

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

struct Env(Ark);

impl std::ops::Deref for Env {
    type Target = Ark;
    fn deref(&self) -> &Ark {
        &self.0
    }
}

impl Env {
    fn new() -> Env {
        Env(Ark::new().init(&["--chunk-avg-kib", "64"]))
    }
    fn restore(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(["--json", "restore", "config"])
            .args(args)
            .output()
            .unwrap()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write(p: &Path, content: &[u8], mode: u32) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtime(p: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_times(
        std::fs::FileTimes::new().set_modified(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(secs * 1000 + 250),
        ),
    )
    .unwrap();
}

/// A server's config files under `base`: returns the paths to back up.
fn server_tree(base: &Path) -> Vec<PathBuf> {
    let n8n = base.join("opt/n8n");
    write(
        &n8n.join(".env"),
        b"N8N_HOST=n8n.example.org\nN8N_ENCRYPTION_KEY=acc-n8n-fixed-encryption-key-0123456789\nPOSTGRES_PASSWORD=pw\n",
        0o600,
    );
    write(
        &n8n.join("docker-compose.yaml"),
        b"services:\n  n8n:\n    image: n8nio/n8n:1.123.0\n    env_file: .env\n",
        0o644,
    );
    write(&n8n.join("data/.keep"), b"", 0o640);
    // Larger than a blob: stored as a chunked stream.
    write(
        &n8n.join("data/backup-key.bin"),
        &common::random_bytes(7, 5 << 20),
        0o400,
    );
    std::fs::set_permissions(n8n.join("data"), std::fs::Permissions::from_mode(0o750)).unwrap();
    let nginx = base.join("etc/nginx");
    write(
        &nginx.join("nginx.conf"),
        b"user www-data;\nhttp { include /etc/nginx/sites-enabled/*; }\n",
        0o644,
    );
    write(
        &nginx.join("sites-available/n8n"),
        b"server { listen 443 ssl; server_name n8n.example.org; location / { proxy_pass http://127.0.0.1:5678; } }\n",
        0o644,
    );
    std::fs::create_dir_all(nginx.join("sites-enabled")).unwrap();
    // Debian's layout: an absolute link into sites-available.
    std::os::unix::fs::symlink(
        nginx.join("sites-available/n8n"),
        nginx.join("sites-enabled/n8n"),
    )
    .unwrap();
    let le = base.join("etc/letsencrypt");
    write(
        &le.join("archive/n8n.example.org/cert1.pem"),
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        0o644,
    );
    write(
        &le.join("archive/n8n.example.org/privkey1.pem"),
        b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
        0o600,
    );
    std::fs::create_dir_all(le.join("live/n8n.example.org")).unwrap();
    // certbot's layout: relative links from live/ into archive/.
    for name in ["cert", "privkey"] {
        std::os::unix::fs::symlink(
            format!("../../archive/n8n.example.org/{name}1.pem"),
            le.join(format!("live/n8n.example.org/{name}.pem")),
        )
        .unwrap();
    }
    std::fs::set_permissions(le.join("archive"), std::fs::Permissions::from_mode(0o700)).unwrap();
    set_mtime(&n8n.join(".env"), 1_700_000_000);
    set_mtime(&nginx.join("nginx.conf"), 1_600_000_000);
    if is_root() {
        std::os::unix::fs::chown(n8n.join(".env"), Some(1000), Some(1000)).unwrap();
        std::os::unix::fs::chown(le.join("archive"), Some(0), Some(4321)).unwrap();
        std::os::unix::fs::lchown(nginx.join("sites-enabled/n8n"), Some(33), Some(33)).unwrap();
    }
    for d in ["opt", "etc"] {
        std::fs::set_permissions(base.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    vec![n8n, nginx, le]
}

/// Every entry under `dir` (not following links): relative path → (kind,
/// mode, uid, gid, mtime in ms, content or link target).
/// (kind, mode, uid, gid, mtime in ms, content or link target).
type Entry = (char, u32, u32, u32, i64, Vec<u8>);

fn tree(dir: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let mtime = md.mtime() * 1000 + md.mtime_nsec() / 1_000_000;
            let (kind, data, mtime) = if md.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                ('l', t.into_os_string().into_encoded_bytes(), 0)
            } else if md.is_dir() {
                stack.push(p.clone());
                ('d', vec![], 0)
            } else {
                ('f', std::fs::read(&p).unwrap(), mtime)
            };
            let mode = if kind == 'l' { 0 } else { md.mode() & 0o7777 };
            out.insert(rel, (kind, mode, md.uid(), md.gid(), mtime, data));
        }
    }
    out
}

/// `n8n_config` backup of `paths`; its id.
fn back_up(env: &Env, paths: &[PathBuf]) -> String {
    let mut c = env.cmd();
    c.args([
        "--json",
        "backup",
        "--type",
        "n8n_config",
        "--no-default-config-paths",
    ]);
    for p in paths {
        c.arg("--config-path").arg(p);
    }
    let o = c.output().unwrap();
    ok_json(&o)["backup_id"].as_str().unwrap().to_string()
}

#[test]
fn files_modes_owners_links_and_directories_come_back_under_a_root() {
    let env = Env::new();
    let src = env.dir.path().join("server");
    let paths = server_tree(&src);
    let backup = back_up(&env, &paths);
    let root = env.dir.path().join("scratch");

    let r = ok_json(&env.restore(&[&backup, "--root", s(&root)]));
    assert_eq!(r["result"], "ok");
    assert_eq!(r["failed"], 0);
    // Under the root, the server's tree as it was: same bytes, modes, owners
    // (as root), mtimes, links and directories.
    let restored_base = root.join(src.strip_prefix("/").unwrap());
    let want = tree(&src);
    let got = tree(&restored_base);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (rel, w) in &want {
        let g = &got[rel];
        if w.0 == 'l' {
            assert_eq!(g.0, 'l', "{rel}");
            continue;
        }
        assert_eq!((g.0, g.1), (w.0, w.1), "kind and mode of {rel}");
        if w.0 == 'f' {
            assert!(g.5 == w.5, "content of {rel}");
            assert_eq!(g.4, w.4, "mtime of {rel}");
        }
        if is_root() {
            assert_eq!((g.2, g.3), (w.2, w.3), "owner of {rel}");
        }
    }
    // Links as written: relative ones, and the absolute one as it was
    // recorded (a link is data: it is not re-rooted).
    let cert = "etc/letsencrypt/live/n8n.example.org/cert.pem";
    assert_eq!(got[cert].5, want[cert].5);
    assert_eq!(
        std::fs::read(restored_base.join(cert)).unwrap(),
        std::fs::read(src.join(cert)).unwrap()
    );
    let site = "etc/nginx/sites-enabled/n8n";
    let link = std::fs::read_link(restored_base.join(site)).unwrap();
    assert_eq!(
        link,
        src.join("etc/nginx/sites-available/n8n"),
        "as recorded"
    );
    if is_root() {
        assert_eq!((got[site].2, got[site].3), (33, 33));
    }
    // No temporary file is left anywhere.
    assert!(got.keys().all(|k| !k.contains(".ark-tmp-")));

    // One item per entry, and the event.
    let items = r["items"].as_array().unwrap();
    // Every entry but `opt` and `etc`, which were not configured.
    assert_eq!(items.len(), want.len() - 2);
    assert!(
        items.iter().all(|i| i["outcome"] == "restored"),
        "{items:?}"
    );
    assert!(items
        .iter()
        .any(|i| i["name"] == format!("file:{}", src.join("opt/n8n/.env").display())));
    let h = env.restore_history();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["what"], "config");
    assert_eq!(h[0]["result"], "ok");
    assert_eq!(h[0]["target"], format!("root:{}", root.display()));
    assert_eq!(h[0]["restored"].as_u64(), Some(items.len() as u64));
    assert_eq!(h[0]["restore_id"], r["restore_id"]);
}

#[test]
fn differing_files_are_kept_unless_no_keep_and_only_limits_what_is_written() {
    let env = Env::new();
    let src = env.dir.path().join("server");
    let paths = server_tree(&src);
    let backup = back_up(&env, &paths);
    let root = env.dir.path().join("scratch");
    ok_json(&env.restore(&[&backup, "--root", s(&root)]));
    let base = root.join(src.strip_prefix("/").unwrap());
    let env_file = base.join("opt/n8n/.env");
    let compose = base.join("opt/n8n/docker-compose.yaml");
    let nginx = base.join("etc/nginx/nginx.conf");
    std::fs::write(&env_file, b"N8N_HOST=edited\n").unwrap();
    std::fs::write(&nginx, b"# edited too\n").unwrap();

    // A dry run writes nothing and says what would happen.
    let before = common::snapshot(&root);
    let plan = ok_json(&env.restore(&[&backup, "--root", s(&root), "--dry-run"]));
    assert_eq!(common::snapshot(&root), before);
    let action = |p: &Path| {
        plan["plan"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["target"] == s(p))
            .unwrap_or_else(|| panic!("{} not in the plan", p.display()))["action"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(action(&env_file), "replace");
    assert_eq!(action(&nginx), "replace");
    assert_eq!(action(&compose), "unchanged");
    let text = env
        .cmd()
        .args([
            "restore",
            "config",
            &backup,
            "--root",
            s(&root),
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("nothing is written"));
    assert_eq!(common::snapshot(&root), before);
    assert!(
        env.restore_history().len() == 1,
        "a dry run is not a restore"
    );

    // --only the n8n directory: .env comes back, its edit kept beside it;
    // nginx.conf (not asked for) keeps its edit.
    let only = src.join("opt/n8n");
    let r = ok_json(&env.restore(&[&backup, "--root", s(&root), "--only", s(&only)]));
    assert_eq!(
        std::fs::read(&env_file).unwrap(),
        std::fs::read(src.join("opt/n8n/.env")).unwrap()
    );
    let kept = base.join("opt/n8n/.env.ark-before-restore");
    assert_eq!(std::fs::read(&kept).unwrap(), b"N8N_HOST=edited\n");
    assert_eq!(std::fs::read(&nginx).unwrap(), b"# edited too\n");
    let items = r["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["name"]
        .as_str()
        .unwrap()
        .starts_with(&format!("file:{}", only.display()))));
    let outcome = |name: &Path| {
        items
            .iter()
            .find(|i| i["name"] == format!("file:{}", name.display()))
            .unwrap()["outcome"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(outcome(&src.join("opt/n8n/.env")), "restored");
    assert_eq!(outcome(&src.join("opt/n8n/docker-compose.yaml")), "skipped");

    // --no-keep: replaced with no copy (the earlier copy stays as it was).
    std::fs::write(&env_file, b"N8N_HOST=edited again\n").unwrap();
    ok_json(&env.restore(&[
        &backup,
        "--root",
        s(&root),
        "--only",
        s(&src.join("opt/n8n/.env")),
        "--no-keep",
    ]));
    assert_eq!(
        std::fs::read(&env_file).unwrap(),
        std::fs::read(src.join("opt/n8n/.env")).unwrap()
    );
    assert_eq!(std::fs::read(&kept).unwrap(), b"N8N_HOST=edited\n");
    let copies = std::fs::read_dir(base.join("opt/n8n"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("ark-before-restore")
        })
        .count();
    assert_eq!(copies, 1);

    // A second restore keeps the previous copy and adds the next one.
    std::fs::write(&env_file, b"third edit\n").unwrap();
    ok_json(&env.restore(&[
        &backup,
        "--root",
        s(&root),
        "--only",
        s(&src.join("opt/n8n/.env")),
    ]));
    assert_eq!(
        std::fs::read(base.join("opt/n8n/.env.ark-before-restore.1")).unwrap(),
        b"third edit\n"
    );

    // --only naming nothing the backup holds; a relative --root: usage errors.
    let before = common::snapshot(&root);
    let o = env.restore(&[&backup, "--root", s(&root), "--only", "/etc/shadow"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("records nothing there"),
        "{}",
        stderr(&o)
    );
    let o = env.restore(&[&backup, "--root", "relative/dir"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not an absolute path"));
    assert_eq!(common::snapshot(&root), before);
}

/// A backup written by hand through the session API, as a real one is:
/// `entries` are config file records, with their content when they are files
/// (the checksum recorded is the content's unless `wrong_checksum`).
fn crafted(
    env: &Env,
    entries: &[(&str, FileType, Option<&str>)],
    wrong_checksum: &[&str],
) -> String {
    rt().block_on(async {
        let store = common::open_store(&env.store()).await;
        let mut session = n8n_ark::store::ingest::BackupSession::begin(&store, "n8n_config")
            .await
            .unwrap();
        let mut files = Vec::new();
        for (path, kind, data) in entries {
            let mut f = ConfigFile {
                path: path.to_string(),
                file_type: *kind,
                mode: if *kind == FileType::Directory {
                    0o755
                } else {
                    0o644
                },
                uid: 0,
                gid: 0,
                mtime_ms: 1_700_000_000_000,
                ..Default::default()
            };
            match kind {
                FileType::File => {
                    let bytes = data.unwrap().as_bytes().to_vec();
                    let item = format!("config/crafted/{}", files.len());
                    f.size = bytes.len() as u64;
                    f.checksum = Some(if wrong_checksum.contains(path) {
                        blake3::hash(b"something else").to_hex().to_string()
                    } else {
                        blake3::hash(&bytes).to_hex().to_string()
                    });
                    session.add_blob(&item, bytes).await.unwrap();
                    f.item = Some(item);
                }
                FileType::Symlink => f.link_target = data.map(String::from),
                _ => {}
            }
            files.push(f);
        }
        let contents = Contents {
            config_files: files,
            ..Default::default()
        };
        session
            .commit_with(BTreeMap::new(), Some(contents))
            .await
            .unwrap()
            .backup_id
    })
}

#[test]
fn crafted_manifests_that_escape_the_root_are_refused_and_nothing_is_written() {
    use FileType::*;
    let env = Env::new();
    let root = env.dir.path().join("scratch");
    std::fs::create_dir_all(&root).unwrap();
    let outside = env.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let benign: (&str, FileType, Option<&str>) = ("/srv/app/settings.json", File, Some("{}\n"));
    type Crafted<'a> = (&'a str, FileType, Option<&'a str>);
    // Paths no backup records (they are normalised when it is taken): the
    // whole restore is refused.
    let cases: Vec<(&str, Vec<Crafted>)> = vec![
        (
            "/../../etc/passwd",
            vec![
                benign,
                (
                    "/../../etc/passwd",
                    File,
                    Some("root::0:0::/root:/bin/sh\n"),
                ),
            ],
        ),
        (
            "/srv/app/../../../etc/passwd",
            vec![
                benign,
                (
                    "/srv/app/../../../etc/passwd",
                    File,
                    Some("root::0:0::/root:/bin/sh\n"),
                ),
            ],
        ),
        (
            "etc/cron.d/evil",
            vec![
                benign,
                ("etc/cron.d/evil", File, Some("* * * * * root sh\n")),
            ],
        ),
        ("/srv/app/settings.json", vec![benign, benign]),
    ];
    let mut refused = Vec::new();
    for (needle, entries) in &cases {
        let id = crafted(&env, entries, &[]);
        for dry in [true, false] {
            let mut args = vec![id.as_str(), "--root", s(&root)];
            if dry {
                args.push("--dry-run");
            }
            let o = env.restore(&args);
            assert!(
                !o.status.success(),
                "{needle}: {}",
                String::from_utf8_lossy(&o.stdout)
            );
            let err = stderr(&o);
            assert!(err.contains(&format!("{needle:?}")), "{needle}: {err}");
            assert_eq!(
                err.lines().filter(|l| l.starts_with("error:")).count(),
                1,
                "{err}"
            );
            assert_eq!(
                std::fs::read_dir(&root).unwrap().count(),
                0,
                "{needle}: something was written"
            );
        }
        refused.push((id, *needle));
    }
    // Every refusal is recorded, naming the path.
    let h = env.restore_history();
    assert_eq!(h.len(), refused.len());
    for (r, (id, needle)) in h.iter().zip(&refused) {
        assert_eq!(r["backup_id"], id.as_str());
        assert_eq!(r["result"], "failed");
        assert_eq!(r["failed_stage"], "check");
        let m = r["message"].as_str().unwrap();
        assert!(
            m.contains(needle) && m.contains("nothing was written"),
            "{m}"
        );
    }

    // An older n8n-ark recorded a --config-path as given, `..` included:
    // such a backup restores, each path where its `..` leads (never above
    // the root).
    let older = crafted(
        &env,
        &[("/srv/app/../app/./old.conf", File, Some("old\n"))],
        &[],
    );
    let r = ok_json(&env.restore(&[&older, "--root", s(&root)]));
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(
        std::fs::read(root.join("srv/app/old.conf")).unwrap(),
        b"old\n"
    );
    std::fs::remove_dir_all(root.join("srv")).unwrap();

    // Symlinks are data: restored as links, whatever they point at (out of
    // the root, up past it, through the backup's own links), and nothing is
    // written through one.
    let links = crafted(
        &env,
        &[
            benign,
            ("/srv/app/passwd", Symlink, Some("/etc/passwd")),
            ("/srv/app/up", Symlink, Some("../../../../../../etc")),
            ("/srv/app/s", Symlink, Some("../..")),
            ("/srv/app/t", Symlink, Some("s/../../etc")),
        ],
        &[],
    );
    let r = ok_json(&env.restore(&[&links, "--root", s(&root)]));
    assert_eq!(r["failed"], 0, "{r}");
    for (name, target) in [
        ("passwd", "/etc/passwd"),
        ("up", "../../../../../../etc"),
        ("s", "../.."),
        ("t", "s/../../etc"),
    ] {
        assert_eq!(
            std::fs::read_link(root.join("srv/app").join(name)).unwrap(),
            Path::new(target)
        );
    }
    std::fs::remove_dir_all(root.join("srv")).unwrap();

    // A file the backup records below one of its own links would be
    // written through it: that entry is refused, the others restored.
    let through = crafted(
        &env,
        &[
            benign,
            ("/srv/app/conf", Symlink, Some(s(&outside))),
            ("/srv/app/conf/evil", File, Some("x\n")),
        ],
        &[],
    );
    let plan = ok_json(&env.restore(&[&through, "--root", s(&root), "--dry-run"]));
    let evil = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "/srv/app/conf/evil")
        .unwrap()
        .clone();
    assert_eq!(evil["action"], "refused");
    assert!(evil["reason"]
        .as_str()
        .unwrap()
        .contains("written through the link"));
    let o = env.restore(&[&through, "--root", s(&root)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/srv/app/conf/evil"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(root.join("srv/app/settings.json")).unwrap(),
        b"{}\n"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    std::fs::remove_dir_all(root.join("srv")).unwrap();

    // A directory of the target on the way, a symlink leading out of the
    // root: what is below it is refused, nothing is written through it.
    std::os::unix::fs::symlink(&outside, root.join("srv")).unwrap();
    let id = crafted(&env, &[benign], &[]);
    let o = env.restore(&[&id, "--root", s(&root)]);
    let err = stderr(&o);
    assert!(!o.status.success());
    let last = env.restore_history().pop().unwrap();
    let detail = last["items"][0]["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("is a symlink to") && detail.contains("outside the root"),
        "{detail} / {err}"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    std::fs::remove_file(root.join("srv")).unwrap();

    // With the root `/`, an absolute link outside the backup's files is where
    // it pointed when backed up: planned as is (dry run only).
    let id = crafted(
        &env,
        &[("/srv/app/passwd", Symlink, Some("/etc/passwd"))],
        &[],
    );
    let plan = ok_json(&env.restore(&[&id, "--root", "/", "--dry-run"]));
    assert_eq!(plan["plan"][0]["link_target"], "/etc/passwd");

    // Content that does not match its checksum: not written, the rest is.
    let id = crafted(
        &env,
        &[
            ("/srv/app", Directory, None),
            ("/srv/app/settings.json", File, Some("{}\n")),
            ("/srv/app/tampered.json", File, Some("{\"evil\": true}\n")),
        ],
        &["/srv/app/tampered.json"],
    );
    let o = env.restore(&[&id, "--root", s(&root)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("1 config file(s) could not be restored: /srv/app/tampered.json"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(root.join("srv/app/settings.json")).unwrap(),
        b"{}\n"
    );
    let names: Vec<String> = std::fs::read_dir(root.join("srv/app"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["settings.json"]);
    let last = env.restore_history().pop().unwrap();
    assert_eq!(last["result"], "partial");
    assert_eq!(last["failed"], 1);
    let bad = last["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["outcome"] == "failed")
        .unwrap()
        .clone();
    assert_eq!(bad["name"], "file:/srv/app/tampered.json");
    assert!(bad["detail"].as_str().unwrap().contains("does not match"));
}

/// What a backup records, a restore writes back: a path given with `..` or
/// through a symlinked directory is recorded where it really is; file names
/// that are not UTF-8 are recorded as bytes; a symlink is recorded and
/// restored as the link it is, whatever it points at (Debian's nginx links
/// `modules-enabled/*.conf` to `/usr/share/nginx/...`, outside any tree a
/// backup holds), also under a scratch root, also with --dry-run and --only,
/// and a dry run needs no root yet.
#[test]
fn dot_dot_paths_non_utf8_names_and_links_out_of_the_tree_come_back() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    let src = env.dir.path().join("server");
    let nginx = src.join("etc/nginx");
    write(
        &nginx.join("nginx.conf"),
        b"include modules-enabled/*.conf;\n",
        0o644,
    );
    write(
        &nginx.join("sites-available/default"),
        b"server {}\n",
        0o644,
    );
    std::fs::create_dir_all(nginx.join("sites-enabled")).unwrap();
    std::os::unix::fs::symlink(
        nginx.join("sites-available/default"),
        nginx.join("sites-enabled/default"),
    )
    .unwrap();
    std::fs::create_dir_all(nginx.join("modules-enabled")).unwrap();
    let outside = "/usr/share/nginx/modules-available/mod-http-n8n-ark-test.conf";
    assert!(!Path::new(outside).exists());
    std::os::unix::fs::symlink(
        outside,
        nginx.join("modules-enabled/50-mod-http-n8n-ark-test.conf"),
    )
    .unwrap();
    // Names that are not UTF-8 (Latin-1 "café", a 0xff byte), and a link to one.
    let latin1 = OsStr::from_bytes(b"caf\xe9.conf");
    write(
        &nginx.join("conf.d").join(latin1),
        b"a Latin-1 name\n",
        0o640,
    );
    write(
        &nginx
            .join("conf.d")
            .join(OsStr::from_bytes(b"dir\xff"))
            .join("inner.conf"),
        b"inside\n",
        0o644,
    );
    std::os::unix::fs::symlink(latin1, nginx.join("conf.d/to-latin1")).unwrap();
    // The compose project, given through `..` and through a symlinked directory.
    let n8n = src.join("opt/n8n");
    write(&n8n.join(".env"), b"N8N_HOST=example.org\n", 0o600);
    write(&n8n.join("docker-compose.yaml"), b"services: {}\n", 0o644);
    std::os::unix::fs::symlink(&n8n, src.join("n8n-current")).unwrap();
    let backup = back_up(
        &env,
        &[
            nginx.clone(),
            src.join("opt/n8n/../n8n/./.env"),
            src.join("n8n-current/docker-compose.yaml"),
        ],
    );

    // Recorded normalised, where the files are.
    let m = env.manifest_of(&backup);
    let files = m.contents.unwrap().config_files;
    let recorded: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for p in &recorded {
        assert!(
            !p.contains("/..") && !p.contains("/./") && !p.contains("n8n-current"),
            "{p}"
        );
    }
    assert!(recorded.contains(&s(&n8n.join(".env"))), "{recorded:?}");
    assert!(
        recorded.contains(&s(&n8n.join("docker-compose.yaml"))),
        "{recorded:?}"
    );
    let raw = |p: &Path| p.as_os_str().as_bytes().to_vec();
    let odd = files
        .iter()
        .find(|f| f.path_bytes.as_deref() == Some(&raw(&nginx.join("conf.d").join(latin1))[..]))
        .expect("the Latin-1 name is recorded as bytes");
    assert_eq!(odd.file_type, FileType::File);
    assert!(odd.path.ends_with("caf\\xe9.conf"), "{}", odd.path);
    let link = files
        .iter()
        .find(|f| f.path.ends_with("conf.d/to-latin1"))
        .unwrap();
    assert_eq!(
        link.link_target_bytes.as_deref(),
        Some(&b"caf\xe9.conf"[..])
    );
    assert!(files
        .iter()
        .any(|f| f.path.ends_with("inner.conf") && f.path_bytes.is_some()));

    // A dry run under a root that does not exist yet, with and without --only.
    let root = env.dir.path().join("scratch");
    let plan = ok_json(&env.restore(&[&backup, "--root", s(&root), "--dry-run"]));
    assert_eq!(plan["plan"].as_array().unwrap().len(), files.len());
    let only = nginx.join("sites-available");
    let plan =
        ok_json(&env.restore(&[&backup, "--root", s(&root), "--dry-run", "--only", s(&only)]));
    assert_eq!(plan["plan"].as_array().unwrap().len(), 2, "{plan}");
    assert!(!root.exists(), "a dry run writes nothing");
    let o = env.ark(&["restore", "full", &backup, "--root", s(&root), "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!root.exists(), "a dry run writes nothing");

    // The restore: every entry, links as they were written.
    let r = ok_json(&env.restore(&[&backup, "--root", s(&root)]));
    assert_eq!(r["failed"], 0, "{r}");
    let restored = root.join(src.strip_prefix("/").unwrap());
    let want = tree(&nginx);
    let got = tree(&restored.join("etc/nginx"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (rel, w) in &want {
        let g = &got[rel];
        assert_eq!((g.0, g.1, &g.5), (w.0, w.1, &w.5), "{rel}");
    }
    assert_eq!(
        std::fs::read_link(
            restored.join("etc/nginx/modules-enabled/50-mod-http-n8n-ark-test.conf")
        )
        .unwrap(),
        Path::new(outside)
    );
    assert!(
        !Path::new(outside).exists(),
        "nothing is written through a link"
    );
    assert_eq!(
        std::fs::read(restored.join("etc/nginx/conf.d").join(latin1)).unwrap(),
        b"a Latin-1 name\n"
    );
    assert_eq!(
        std::fs::read(restored.join("opt/n8n/.env")).unwrap(),
        b"N8N_HOST=example.org\n"
    );
}

/// SIGTERM (and SIGINT, SIGHUP) stop a config restore between two entries:
/// every entry written is whole, the others untouched, `RestoreFailed` says
/// how far it got, the exit status is 143; running it again finishes it.
#[test]
fn a_signal_stops_a_config_restore_between_entries_and_records_it() {
    let env = Env::new();
    let src = env.dir.path().join("many");
    let n = 3000;
    for i in 0..n {
        write(
            &src.join(format!("conf.d/site-{i:05}.conf")),
            format!("server {{ listen {i}; }}\n").as_bytes(),
            0o644,
        );
    }
    let backup = back_up(&env, std::slice::from_ref(&src));
    let root = env.dir.path().join("scratch");
    std::fs::create_dir_all(&root).unwrap();
    let restored = root.join(src.strip_prefix("/").unwrap()).join("conf.d");
    let mut child = env
        .cmd()
        .args(["restore", "config", &backup, "--root", s(&root)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&restored).map(|d| d.count()).unwrap_or(0) < 50 {
        assert!(std::time::Instant::now() < deadline, "no file was restored");
        assert!(
            child.try_wait().unwrap().is_none(),
            "it ended before the signal"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(143), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    let written: Vec<_> = std::fs::read_dir(&restored)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        written.len() < n,
        "the signal came too late to stop anything"
    );
    for p in &written {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if let Some(i) = name
            .strip_prefix("site-")
            .and_then(|r| r.strip_suffix(".conf"))
        {
            let i: usize = i.parse().unwrap();
            assert_eq!(
                std::fs::read_to_string(p).unwrap(),
                format!("server {{ listen {i}; }}\n"),
                "{name} is not whole"
            );
        } else {
            panic!("a temporary file was left: {name}");
        }
    }
    let h = env.restore_history();
    let last = h.last().unwrap();
    assert_eq!(last["result"], "failed", "{last}");
    assert_eq!(last["failed_stage"], "config", "{last}");
    let message = last["message"].as_str().unwrap();
    assert!(message.contains("interrupted by SIGTERM"), "{message}");
    // Running it again finishes it.
    let r = ok_json(&env.restore(&[&backup, "--root", s(&root)]));
    assert_eq!(r["result"], "ok", "{r}");
    assert_eq!(std::fs::read_dir(&restored).unwrap().count(), n);
}
