//! The test infrastructure itself: ephemeral PostgreSQL clusters, the n8n
//! sample database, and PostgreSQL in a Docker container.
mod common;

use common::docker::PgContainer;
use common::pg::{self, PgCluster, FIXTURE_TABLES};
use std::process::Command;
use std::time::Instant;

#[test]
fn trust_cluster_loads_the_n8n_sample() {
    let t0 = Instant::now();
    let pg = PgCluster::start();
    let started = t0.elapsed();
    assert_eq!(pg.host(), "127.0.0.1");
    assert_eq!(
        pg.url("n8n"),
        format!("postgres://postgres@127.0.0.1:{}/n8n", pg.port())
    );
    assert_eq!(pg.psql("postgres", "select 1"), "1");
    assert!(pg
        .psql("postgres", "show server_version")
        .starts_with(&format!("{}.", pg::major())));
    // TCP on 127.0.0.1 answers too, without a password.
    let o = pg::clean_command(pg::bin_dir().join("psql"))
        .args(["-X", "-At", &pg.url("postgres"), "-c", "select 2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "2");

    let t1 = Instant::now();
    pg.load_fixture("n8n");
    let loaded = t1.elapsed();
    eprintln!("cluster started in {started:?}, fixture loaded in {loaded:?}");

    let counts = pg.table_counts("n8n");
    assert_eq!(counts.len(), FIXTURE_TABLES, "{counts:?}");
    assert!(counts["public.workflow_entity"] > 0, "{counts:?}");
    assert!(counts["public.credentials_entity"] > 0, "{counts:?}");
    assert!(counts["public.user_api_keys"] > 0, "{counts:?}");
    // The empty database has no tables at all.
    assert!(pg.table_counts("postgres").is_empty());

    let sums = pg.table_checksums("n8n");
    assert_eq!(sums.len(), FIXTURE_TABLES);
    assert_eq!(sums, pg.table_checksums("n8n"), "checksums are stable");
    assert!(sums.values().all(|s| s.len() == 32));

    // A copy through the template has the same contents; a change shows.
    pg.clone_fixture("copy");
    assert_eq!(pg.table_counts("copy"), counts);
    assert_eq!(pg.table_checksums("copy"), sums);
    pg.psql(
        "copy",
        "UPDATE public.workflow_entity SET name = name || ' (changed)' \
         WHERE id = (SELECT min(id) FROM public.workflow_entity)",
    );
    let changed = pg.table_checksums("copy");
    assert_ne!(
        changed["public.workflow_entity"],
        sums["public.workflow_entity"]
    );
    assert_eq!(
        changed.iter().filter(|(k, v)| sums[*k] != **v).count(),
        1,
        "only the changed table's checksum moves"
    );
    // Checksums do not depend on the physical order of rows.
    pg.clone_fixture("reordered");
    let physical = "select string_agg(id, ',') from public.workflow_entity";
    let before = pg.psql("reordered", physical);
    pg.psql(
        "reordered",
        "CLUSTER public.workflow_entity USING workflow_entity_pkey",
    );
    assert_ne!(pg.psql("reordered", physical), before, "rows moved");
    assert_eq!(pg.table_checksums("reordered"), sums);

    // The sample's rows are what the fixture README says.
    let key = pg.psql(
        "n8n",
        "select count(*) from public.user_api_keys where \"apiKey\" <> ''",
    );
    assert!(key.parse::<u64>().unwrap() > 0);
}

#[test]
fn password_cluster_refuses_a_wrong_password() {
    let pg = PgCluster::start_with_password("s3cret-pw");
    assert_eq!(pg.password(), Some("s3cret-pw"));
    assert!(!pg.url("postgres").contains("s3cret"));
    let psql = || {
        let mut c = pg::clean_command(pg::bin_dir().join("psql"));
        c.env("PGPASSFILE", "/dev/null");
        c
    };

    let wrong = psql()
        .args(["-X", "-At", "-w", "-c", "select 1"])
        .arg(format!(
            "postgresql://postgres:wrong@127.0.0.1:{}/postgres",
            pg.port()
        ))
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("password authentication failed"), "{err}");

    let none = psql()
        .args(["-X", "-At", "-w", "-c", "select 1", &pg.url("postgres")])
        .output()
        .unwrap();
    assert!(!none.status.success(), "no password must be refused too");

    let right = psql()
        .env("PGPASSWORD", "s3cret-pw")
        .args([
            "-X",
            "-At",
            "-w",
            "-c",
            "select current_user",
            &pg.url("postgres"),
        ])
        .output()
        .unwrap();
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&right.stdout).trim(), "postgres");

    // The helper's own calls go through the trusted socket.
    assert_eq!(pg.psql("postgres", "select 1"), "1");
}

#[test]
fn clusters_run_side_by_side() {
    let clusters: Vec<PgCluster> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(PgCluster::start)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ports: Vec<u16> = clusters.iter().map(|c| c.port()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    for (i, c) in clusters.iter().enumerate() {
        c.create_db("d");
        c.psql(
            "d",
            &format!("create table t(x int); insert into t values ({i})"),
        );
    }
    for (i, c) in clusters.iter().enumerate() {
        assert_eq!(c.psql("d", "select x from t"), i.to_string());
    }
    let dirs: Vec<_> = clusters
        .iter()
        .map(|c| c.socket_dir().to_path_buf())
        .collect();
    drop(clusters);
    for d in dirs {
        assert!(!d.exists(), "{} removed on drop", d.display());
    }
}

#[test]
#[ignore = "needs a Docker engine and ARK_TEST_PG_IMAGE (./setup.sh test provides both)"]
fn container_runs_the_machines_postgres_and_loads_the_sample() {
    let t0 = Instant::now();
    let c = PgContainer::start();
    let started = t0.elapsed();
    assert!(c.name().starts_with("n8n-ark-test-pg-"));

    let out = Command::new("docker")
        .args(["exec", c.name(), "pg_dump", "--version"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(
        version.contains(&format!("(PostgreSQL) {}.", pg::major())),
        "{version}"
    );
    for tool in ["pg_dumpall", "pg_restore", "psql"] {
        let o = Command::new("docker")
            .args(["exec", c.name(), tool, "--version"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let label = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{index .Config.Labels \"n8n-ark.test\"}}",
            c.name(),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "1");

    let t1 = Instant::now();
    c.load_fixture("n8n");
    let loaded = t1.elapsed();
    eprintln!("container started in {started:?}, fixture loaded in {loaded:?}");
    let tables = c.exec_psql(
        "n8n",
        "select count(*) from pg_tables where schemaname = 'public'",
    );
    assert_eq!(tables, FIXTURE_TABLES.to_string());
    let workflows: u64 = c
        .exec_psql("n8n", "select count(*) from public.workflow_entity")
        .parse()
        .unwrap();
    assert!(workflows > 0);

    // The host reaches it on 127.0.0.1 with the URL.
    let o = pg::clean_command(pg::bin_dir().join("psql"))
        .args([
            "-X",
            "-At",
            &c.url("n8n"),
            "-c",
            "select count(*) from public.workflow_entity",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        workflows.to_string()
    );

    let name = c.name().to_string();
    drop(c);
    let gone = Command::new("docker")
        .args(["inspect", &name])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "the container is removed on drop");
}
