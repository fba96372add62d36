"""A PostgreSQL server of a script's own, for script/cluster-chaos and script/bench: Debian's
`postgresql`, initdb into a folder (as the postgres user when run as root: the server refuses
root), on 127.0.0.1 and a port of its own, with a `releasectl` role that logs in with a
password and a `releasectl` database it owns."""
import os, pwd, random, subprocess, uuid


def bin_dir():
    root = "/usr/lib/postgresql"
    versions = sorted((d for d in os.listdir(root) if d.isdigit()), key=int) if os.path.isdir(root) else []
    return f"{root}/{versions[-1]}/bin" if versions else None


class Server:
    def __init__(self, folder, rng=random, durable=False):
        """`durable`: a commit is in the server's WAL (written, if not fsynced) before it is
        acknowledged (`synchronous_commit = on`, PostgreSQL's default), so that a server killed
        and restarted keeps every transaction it acknowledged — what the cluster relies on, and
        what a chaos run that restarts the server must have. Without it commits are faster and a
        crashed server may lose the last ones."""
        self.durable = durable
        self.bin = bin_dir()
        if not self.bin:
            raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
        self.dir = folder
        os.makedirs(folder, exist_ok=True)
        self.as_owner = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(folder, pw.pw_uid, pw.pw_gid)
            self.as_owner = ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups", "--"]
        subprocess.run(self.as_owner + [f"{self.bin}/initdb", "-D", f"{folder}/data", "-A", "trust", "-U", "postgres", "--no-sync"],
                       cwd="/", check=True, stdout=subprocess.DEVNULL)
        with open(f"{folder}/data/pg_hba.conf", "w") as f:
            f.write("local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        self.port = rng.randrange(20000, 45000)
        self.start()
        self.password = uuid.uuid4().hex
        self.sql(f"CREATE ROLE releasectl LOGIN PASSWORD '{self.password}'")

    def start(self):
        subprocess.run(self.as_owner + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/log", "-w", "start", "-o",
                                        f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                                        + ("" if self.durable else "-c synchronous_commit=off ") + "-c max_connections=200"],
                       cwd="/", check=True, stdout=subprocess.DEVNULL)

    def restart(self, mode="fast"):
        """Stops the server (`fast`: its sessions ended cleanly; `immediate`: as a crash) and
        starts it again on the same port."""
        subprocess.run(self.as_owner + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-m", mode, "-w", "stop"], cwd="/",
                       stdout=subprocess.DEVNULL)
        self.start()

    def sql(self, statement, db="postgres"):
        return subprocess.run([f"{self.bin}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-p", str(self.port),
                               "-U", "postgres", "-d", db, "-c", statement], check=True, capture_output=True, text=True).stdout

    def create_database(self, name):
        self.sql(f"CREATE DATABASE {name} OWNER releasectl")

    def cluster_toml(self, database, node, folder, lease="30s", port=None):
        """released.toml's [cluster] for a node, its password in a file in `folder`; `port`:
        where the node reaches the server (a proxy's), else the server's own."""
        path = os.path.join(folder, f"password-{node}")
        with open(path, "w") as f:
            f.write(self.password + "\n")
        os.chmod(path, 0o600)
        return (f'[cluster]\nurl = "postgres://releasectl@127.0.0.1:{port or self.port}/{database}?sslmode=disable"\n'
                f'password-file = "{path}"\nnode = "{node}"\nlease = "{lease}"\n')

    def stop(self):
        subprocess.run(self.as_owner + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop"], cwd="/",
                       stdout=subprocess.DEVNULL)
