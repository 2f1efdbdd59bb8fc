//! A local S3-compatible server for tests: moto (PyPI `moto[server]==5.2.5`, which `.ci/run`
//! installs) on a loopback port, one per test, with a fresh bucket. Where moto is not installed the
//! S3 tests are skipped with a notice, unless `OLIVE_TEST_S3=moto` demands it (CI).

use olive_objects::S3Settings;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct S3Server {
    _child: Child,
    pub endpoint: String,
    bucket: String,
}

const ACCESS_KEY: &str = "olive-test";
const SECRET_KEY: &str = "olive-test-secret";

impl S3Server {
    pub async fn start() -> Option<S3Server> {
        let demanded = std::env::var("OLIVE_TEST_S3").is_ok_and(|v| v == "moto");
        let installed = std::process::Command::new("python3")
            .args(["-c", "import moto.server"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(!demanded, "OLIVE_TEST_S3=moto but moto is not installed (pip install 'moto[server]==5.2.5')");
            eprintln!("moto is not installed: skipping the S3 test (pip install 'moto[server]==5.2.5')");
            return None;
        }
        let port = crate::helpers::free_port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start moto");
        let endpoint = format!("http://127.0.0.1:{port}");
        crate::helpers::wait_until_answers(&format!("{endpoint}/moto-api/"), Duration::from_secs(30), "moto").await;
        let client = reqwest::Client::new();
        let bucket = "olive-test".to_owned();
        let created = client.put(format!("{endpoint}/{bucket}")).send().await.unwrap();
        assert!(created.status().is_success(), "creating the bucket: {}", created.status());
        Some(S3Server { _child: child, endpoint, bucket })
    }

    /// `s3://BUCKET/PREFIX`
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// What the server is started with to reach it.
    pub fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("OLIVE_S3_ENDPOINT", self.endpoint.as_str()),
            ("OLIVE_S3_REGION", "us-east-1"),
            ("OLIVE_S3_ACCESS_KEY_ID", ACCESS_KEY),
            ("OLIVE_S3_SECRET_ACCESS_KEY", SECRET_KEY),
        ]
    }

    /// The same, for reading the bucket from the test.
    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
        }
    }
}
