//! What the binary refuses or tightens at start: an owner-only data directory and database
//! files, a `--database-url` of an unknown kind, short secrets, and secrets given as flags.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_data_directory_and_database_files_are_owner_only() {
    let dir = common::data_dir();
    let data_dir = dir.path().join("fresh").join("data");
    let mut cmd = common::command();
    // No YUANLU_ADMIN_KEY: the key is generated into <data-dir>/admin.key.
    cmd.env_remove("YUANLU_ADMIN_KEY")
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(&data_dir);
    let (mut child, base) = common::spawn_listening(cmd);
    let admin_key = std::fs::read_to_string(data_dir.join("admin.key")).unwrap();
    // A write, so the WAL and its index exist.
    let created = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{base}/v1/merchants"))
        .bearer_auth(admin_key.trim())
        .json(&json!({ "name": "Private shop" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    assert_eq!(mode(&data_dir), 0o700, "data directory");
    for file in ["yuanlu.db", "yuanlu.db-wal", "yuanlu.db-shm", "admin.key"] {
        assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_database_url_of_an_unknown_kind_is_refused() {
    let dir = common::data_dir();
    for url in [
        "mysql://root@localhost/yuanlu",
        "postgress://typo/db",
        "./data/yuanlu.db",
    ] {
        let data_dir = dir.path().join("never");
        let output = common::command()
            .args(["migrate", "--database-url", url, "--data-dir"])
            .arg(&data_dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{url} accepted");
        assert!(
            stderr.contains("--database-url must start with postgres://"),
            "{url}: {stderr}"
        );
        assert!(!data_dir.exists(), "{url} made a SQLite database anyway");
        let mut serve = common::command();
        serve
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                url,
                "--data-dir",
            ])
            .arg(&data_dir);
        let (status, stderr) = common::expect_refusal(serve);
        assert!(
            !status.success() && stderr.contains("--database-url"),
            "{stderr}"
        );
    }
    // `sqlite:` names the embedded database in --data-dir; a path after it is refused.
    let data_dir = dir.path().join("embedded");
    let output = common::command()
        .args(["migrate", "--database-url", "sqlite:", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(data_dir.join("yuanlu.db").exists());
    let output = common::command()
        .args([
            "migrate",
            "--database-url",
            "sqlite:///tmp/elsewhere",
            "--data-dir",
        ])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--data-dir"));
}

#[test]
fn short_channel_and_simulator_secrets_are_refused() {
    let dir = common::data_dir();
    let short = "fifteen-bytes-x";
    let (status, stderr) = common::expect_refusal({
        let mut cmd = common::command();
        cmd.env("YUANLU_SIMULATOR_SECRET", short)
            .args(["simulate", "--listen", "127.0.0.1:0"]);
        cmd
    });
    assert!(
        !status.success() && stderr.contains("at least 16 bytes"),
        "{stderr}"
    );

    let secret_file = dir.path().join("simulator.secret");
    std::fs::write(&secret_file, format!("{short}\n")).unwrap();
    let serve = |extra: &[(&str, &str)], args: &[&str]| {
        let mut cmd = common::command();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(args);
        for (key, value) in extra {
            cmd.env(key, value);
        }
        common::expect_refusal(cmd)
    };
    let file = secret_file.display().to_string();
    let (status, stderr) = serve(
        &[],
        &[
            "--simulator-url",
            "http://127.0.0.1:9",
            "--simulator-secret-file",
            &file,
        ],
    );
    assert!(
        !status.success() && stderr.contains("at least 16 bytes"),
        "{stderr}"
    );
    let (status, stderr) = serve(
        &[
            ("YUANLU_WECHAT_URL", "http://127.0.0.1:9/wechat"),
            ("YUANLU_WECHAT_SECRET", short),
        ],
        &[],
    );
    assert!(
        !status.success() && stderr.contains("YUANLU_WECHAT_SECRET must be at least 16 bytes"),
        "{stderr}"
    );
    // A real channel's URL without its secret is refused, not sent to the simulator.
    let (status, stderr) = serve(&[("YUANLU_ALIPAY_URL", "http://127.0.0.1:9/alipay")], &[]);
    assert!(
        !status.success() && stderr.contains("YUANLU_ALIPAY_SECRET"),
        "{stderr}"
    );
}

#[test]
fn no_flag_takes_a_secret() {
    let secret = "a-secret-of-more-than-sixteen-bytes";
    for args in [
        vec!["simulate", "--secret", secret],
        vec!["serve", "--simulator-secret", secret],
    ] {
        let output = common::command().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} accepted");
        assert!(stderr.contains("unexpected argument"), "{args:?}: {stderr}");
    }
    for command in ["serve", "simulate"] {
        let help = common::command()
            .args([command, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(help.contains("--simulator-secret-file"), "{help}");
        assert!(!help.contains("--simulator-secret <"), "{help}");
        assert!(!help.contains("--secret <"), "{help}");
    }
}

#[test]
fn the_simulator_secret_comes_from_the_environment_or_a_file() {
    let dir = common::data_dir();
    let secret = "a-secret-of-more-than-sixteen-bytes";
    let mut simulate = common::command();
    simulate
        .env("YUANLU_SIMULATOR_SECRET", secret)
        .args(["simulate", "--listen", "127.0.0.1:0"]);
    let (mut simulator, sim_base) = common::spawn_listening(simulate);
    let secret_file = dir.path().join("simulator.secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let mut serve = common::command();
    serve
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--simulator-url",
            &sim_base,
        ])
        .arg("--simulator-secret-file")
        .arg(&secret_file)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let (mut server, _) = common::spawn_listening(serve);
    // Both given: refused, so it is never unclear which one is used.
    let mut both = common::command();
    both.env("YUANLU_SIMULATOR_SECRET", secret)
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--simulator-secret-file",
        ])
        .arg(&secret_file);
    let (status, stderr) = common::expect_refusal(both);
    assert!(!status.success() && stderr.contains("not both"), "{stderr}");
    for child in [&mut simulator, &mut server] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A start that hangs fails the test within the harness's deadline, showing what the child
/// printed on both streams, instead of hanging the suite.
#[test]
fn a_start_that_never_listens_fails_by_its_deadline_with_stderr() {
    let dir = common::data_dir();
    let stderr_path = dir.path().join("hung-stderr.log");
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "echo booting; echo 'waiting for the database' >&2; exec sleep 600",
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::fs::File::create(&stderr_path).unwrap());
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::await_listening_within(
            &mut child,
            "yuanlu listening on ",
            "a hung server",
            Some(&stderr_path),
            std::time::Duration::from_millis(500),
        )
    }))
    .expect_err("a start that never listens must fail");
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("within 500ms"), "{message}");
    assert!(message.contains("booting"), "stdout shown: {message}");
    assert!(
        message.contains("waiting for the database"),
        "stderr shown: {message}"
    );
    // The child was killed and reaped, not left running.
    assert!(child.try_wait().unwrap().is_some(), "pid {pid} still runs");
}
