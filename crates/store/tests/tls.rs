//! PostgreSQL over TLS (rustls): `sslmode=require` connects encrypted, and `--ca-file`
//! roots verify the server's certificate. Runs when `YUANLU_TEST_DATABASE_URL` names a
//! database whose server has SSL on (the local one does).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use yuanlu_store::Db;

fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

/// Whether this pool's connection is encrypted, as the server sees it.
async fn ssl_in_use(db: &Db) -> bool {
    let Db::Postgres(pool) = db else {
        panic!("a PostgreSQL URL opens PostgreSQL")
    };
    sqlx::query_scalar::<_, bool>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn sslmode_require_connects_over_tls() {
    let Some(url) = yuanlu_testkit::postgres_url("sslmode_require_connects_over_tls") else {
        return;
    };
    let db = Db::open(
        Some(&with_param(&url, "sslmode=require")),
        Path::new("."),
        None,
    )
    .await
    .unwrap();
    assert!(ssl_in_use(&db).await, "sslmode=require must encrypt");
    db.close().await;
    // The control: without TLS the same query says false, so it tells the two apart.
    let plain = Db::open_postgres(&with_param(&url, "sslmode=disable"), None)
        .await
        .unwrap();
    assert!(!ssl_in_use(&plain).await);
    plain.close().await;
}

#[tokio::test]
async fn sslmode_verify_ca_trusts_the_ca_file() {
    let Some(url) = yuanlu_testkit::postgres_url("sslmode_verify_ca_trusts_the_ca_file") else {
        return;
    };
    // The server's own (self-signed) certificate is the CA to trust.
    let db = Db::open_postgres(&with_param(&url, "sslmode=require"), None)
        .await
        .unwrap();
    let Db::Postgres(pool) = &db else {
        panic!("a PostgreSQL URL opens PostgreSQL")
    };
    let cert_file: String = sqlx::query_scalar("SELECT current_setting('ssl_cert_file')")
        .fetch_one(pool)
        .await
        .unwrap();
    db.close().await;
    let Ok(cert) = std::fs::read(&cert_file) else {
        eprintln!("skipped: the server's certificate {cert_file} is not readable here");
        return;
    };
    let dir = std::env::temp_dir().join(format!("yuanlu-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, cert).unwrap();

    let verify_ca = with_param(&url, "sslmode=verify-ca");
    // The CA file reaches the TLS setup: one that does not exist fails the connection.
    // (Whether the system roots alone trust the server depends on the machine: Debian's
    // /etc/ssl/certs holds the snakeoil certificate, which rustls-native-certs reads.)
    let missing = dir.join("missing.pem");
    assert!(
        Db::open(Some(&verify_ca), Path::new("."), Some(&missing))
            .await
            .is_err(),
        "a missing CA file must fail, not be ignored"
    );
    let db = Db::open(Some(&verify_ca), Path::new("."), Some(&ca_file))
        .await
        .unwrap();
    assert!(ssl_in_use(&db).await);
    db.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
