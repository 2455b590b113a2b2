//! A throwaway PostgreSQL cluster: one per test process, in a temporary directory, on a free
//! port, owned by the `postgres` user (initdb refuses root). A watchdog stops it when the test
//! process exits. Each test gets its own database.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::OnceCell;

pub struct Postgres {
    /// The address connection URLs name.
    host: String,
    port: u16,
    dir: PathBuf,
    counter: AtomicU64,
}

static SHARED: OnceCell<Postgres> = OnceCell::const_new();

/// The process-wide cluster, started on first use.
pub async fn shared() -> anyhow::Result<&'static Postgres> {
    SHARED.get_or_try_init(|| Postgres::start("127.0.0.1")).await
}

fn bin(name: &str) -> PathBuf {
    for v in ["17", "16", "15", "14"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin/{name}"));
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out =
        cmd.output().map_err(|e| anyhow::anyhow!("{what}: {e} (is PostgreSQL installed?)"))?;
    if !out.status.success() {
        anyhow::bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl Postgres {
    /// A cluster of the caller's own, listening on loopback and on `address` (an address of
    /// this host that other network namespaces reach), which its URLs name. Stopped when the
    /// test process exits.
    pub async fn dedicated(address: std::net::Ipv4Addr) -> anyhow::Result<Self> {
        Self::start(&address.to_string()).await
    }

    async fn start(host: &str) -> anyhow::Result<Self> {
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!("paas-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let as_root =
            Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
        let data = dir.join("data");
        if as_root {
            run(Command::new("chown").args(["postgres:postgres"]).arg(&dir), "chown")?;
        }
        let user_cmd = |program: PathBuf| {
            if as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        run(
            user_cmd(bin("initdb"))
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&data),
            "initdb",
        )?;
        if host != "127.0.0.1" {
            // Other namespaces connect from their own addresses (test clusters only).
            let hba = data.join("pg_hba.conf");
            let mut rules = std::fs::read_to_string(&hba)?;
            rules.push_str("host all all 0.0.0.0/0 trust\n");
            std::fs::write(&hba, rules)?;
        }
        // Run the server under a watchdog: started again whenever it stops ([`Self::restart`]),
        // stopped for good once this process is gone.
        let script = format!(
            "( while [ -d /proc/{parent} ]; do sleep 1; done; touch {dir}/gone; \
               kill -INT $(head -1 {data}/postmaster.pid) 2>/dev/null ) & \
             while [ ! -e {dir}/gone ]; do \
               {postgres} -D {data} -p {port} -k {dir} -c listen_addresses={listen} -c fsync=off \
               -c synchronous_commit=off -c full_page_writes=off -c max_connections=300; \
               sleep 0.2; \
             done; rm -rf {dir}",
            postgres = bin("postgres").display(),
            listen =
                if host == "127.0.0.1" { host.to_owned() } else { format!("127.0.0.1,{host}") },
            data = data.display(),
            dir = dir.display(),
            parent = std::process::id(),
        );
        let mut watchdog = if as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "sh", "-c", &script]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", &script]);
            c
        };
        watchdog.stdout(Stdio::null()).stderr(Stdio::null()).stdin(Stdio::null()).spawn()?;
        let pg = Self { host: host.to_owned(), port, dir, counter: AtomicU64::new(0) };
        let admin = pg.url("postgres");
        crate::eventually("postgres to accept connections", Duration::from_secs(30), || {
            let admin = admin.clone();
            async move { kit::db::Db::connect(&admin, 1).await.ok().map(|_| ()) }
        })
        .await?;
        Ok(pg)
    }

    /// Restart the server as an operator would (a fast shutdown: clients are disconnected,
    /// then it starts again on the same port with the same data); returns once it accepts
    /// connections again.
    pub async fn restart(&self) -> anyhow::Result<()> {
        let pid = std::fs::read_to_string(self.dir.join("data/postmaster.pid"))?;
        let pid = pid.lines().next().unwrap_or_default().trim().to_owned();
        run(Command::new("kill").args(["-INT", &pid]), "kill -INT postgres")?;
        // Gone first (the pid file goes with it), then back.
        crate::eventually("postgres to stop", Duration::from_secs(30), || async {
            (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
        })
        .await?;
        let admin = self.url("postgres");
        crate::eventually("postgres to accept connections again", Duration::from_secs(30), || {
            let admin = admin.clone();
            async move { kit::db::Db::connect(&admin, 1).await.ok().map(|_| ()) }
        })
        .await
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connection URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@{}:{}/{db}", self.host, self.port)
    }

    /// Create an empty database and return its URL.
    pub async fn fresh_database(&self) -> anyhow::Result<String> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{n}_{}", uuid::Uuid::new_v4().simple());
        let admin = kit::db::Db::connect(&self.url("postgres"), 1).await?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin.pool).await?;
        admin.pool.close().await;
        Ok(self.url(&name))
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}
