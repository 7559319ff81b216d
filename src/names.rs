//! Users, groups and host names, read from the files, never through NSS.
//!
//! sexton is one static executable (see `.cargo/config.toml`). A static
//! glibc cannot safely use NSS: `getpwnam`, `getgrouplist` and
//! `getaddrinfo` `dlopen` the modules `nsswitch.conf` names
//! (`libnss_systemd`, `libnss_mdns`...), which bring a second, dynamic C
//! library into the process and crash it. So the three lookups sexton
//! needs (the supervisor's `user =`, the groups of that user, a readiness
//! check's `host:port`) read the classic files directly:
//! `/etc/passwd` and `/etc/group` (`passwd(5)`, `group(5)`: one entry a
//! line, colon-separated fields) and `/etc/hosts` (`hosts(5)`). Users or
//! hosts that only a directory service (LDAP, DNS) knows are not found;
//! the error says so.
//!
//! No maintained crate reads these files without going through the C
//! library (`pwd-grp`, `uzers` and `nix` all call `getpwnam`), hence
//! these few lines.

use std::io;
use std::net::IpAddr;
use std::path::Path;

/// One `/etc/passwd` entry, the fields sexton uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The lines of a colon-separated database, split into fields; comments
/// (`#`) and blank lines skipped.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

/// The user named `name`, or whose uid is `uid`, in the passwd file at
/// `path` (normally `/etc/passwd`).
pub fn user_in(path: &Path, by: UserKey<'_>) -> io::Result<Option<User>> {
    let text = std::fs::read_to_string(path)?;
    for f in entries(&text) {
        if f.len() < 4 {
            continue;
        }
        let (Ok(uid), Ok(gid)) = (f[2].parse::<u32>(), f[3].parse::<u32>()) else {
            continue;
        };
        let hit = match by {
            UserKey::Name(n) => f[0] == n,
            UserKey::Uid(u) => uid == u,
        };
        if hit {
            return Ok(Some(User {
                name: f[0].to_string(),
                uid,
                gid,
            }));
        }
    }
    Ok(None)
}

/// How a user is looked up.
#[derive(Debug, Clone, Copy)]
pub enum UserKey<'a> {
    Name(&'a str),
    Uid(u32),
}

/// The user from `/etc/passwd`.
pub fn user(by: UserKey<'_>) -> io::Result<Option<User>> {
    user_in(Path::new("/etc/passwd"), by)
}

/// The groups `user` is in according to the group file at `path`
/// (normally `/etc/group`), `primary` first: what `getgrouplist(3)` gives
/// for the files backend.
pub fn groups_in(path: &Path, user: &str, primary: u32) -> io::Result<Vec<u32>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = vec![primary];
    for f in entries(&text) {
        if f.len() < 4 {
            continue;
        }
        let Ok(gid) = f[2].parse::<u32>() else {
            continue;
        };
        if f[3].split(',').any(|m| m.trim() == user) && !out.contains(&gid) {
            out.push(gid);
        }
    }
    Ok(out)
}

/// The groups of `user` from `/etc/group`.
pub fn groups(user: &str, primary: u32) -> io::Result<Vec<u32>> {
    groups_in(Path::new("/etc/group"), user, primary)
}

/// The addresses of `host`: an IP address as it is; `localhost` as the
/// loopback addresses; any other name as `/etc/hosts` (at `hosts_file`)
/// lists it. Empty when the name is not there.
pub fn host_in(hosts_file: &Path, host: &str) -> io::Result<Vec<IpAddr>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let mut out = Vec::new();
    match std::fs::read_to_string(hosts_file) {
        Ok(text) => {
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or("");
                let mut words = line.split_whitespace();
                let Some(Ok(ip)) = words.next().map(str::parse::<IpAddr>) else {
                    continue;
                };
                if words.any(|w| w.eq_ignore_ascii_case(host)) && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    if out.is_empty() && host.eq_ignore_ascii_case("localhost") {
        out.push(IpAddr::from([127, 0, 0, 1]));
        out.push(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
    }
    Ok(out)
}

/// The addresses of `host`, from `/etc/hosts` (see [`host_in`]).
pub fn host(host: &str) -> io::Result<Vec<IpAddr>> {
    host_in(Path::new("/etc/hosts"), host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("sexton-names-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn users_groups_and_hosts_from_the_files() {
        let pw = file(
            "passwd",
            "# comment\nroot:x:0:0:root:/root:/bin/bash\n\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nbroken:x:notanumber:1::/:\napp:x:1000:1000::/home/app:/bin/sh\n",
        );
        let gr = file(
            "group",
            "root:x:0:\nadm:x:4:app,other\nwww:x:33: app \nnogroup:x:65534:\nbad:x:zz:app\n",
        );
        let hosts = file(
            "hosts",
            "127.0.0.1 localhost\n::1 localhost ip6-localhost # v6\n10.1.2.3 db.internal db\n# 10.9.9.9 commented\n",
        );
        let app = user_in(&pw, UserKey::Name("app")).unwrap().unwrap();
        assert_eq!((app.uid, app.gid), (1000, 1000));
        assert_eq!(
            user_in(&pw, UserKey::Uid(65534)).unwrap().unwrap().name,
            "nobody"
        );
        assert_eq!(user_in(&pw, UserKey::Name("broken")).unwrap(), None);
        assert_eq!(user_in(&pw, UserKey::Name("nope")).unwrap(), None);
        assert_eq!(groups_in(&gr, "app", 1000).unwrap(), [1000, 4, 33]);
        assert_eq!(groups_in(&gr, "nobody", 65534).unwrap(), [65534]);
        assert_eq!(
            host_in(&hosts, "db").unwrap(),
            ["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(host_in(&hosts, "localhost").unwrap().len(), 2);
        assert_eq!(
            host_in(&hosts, "[::1]").unwrap(),
            ["::1".parse::<IpAddr>().unwrap()]
        );
        assert!(host_in(&hosts, "10.9.9.9.example").unwrap().is_empty());
        // localhost without a hosts file.
        let none = std::path::Path::new("/nonexistent/hosts");
        assert_eq!(host_in(none, "localhost").unwrap().len(), 2);
        for p in [pw, gr, hosts] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn the_machines_own_files_agree_with_id() {
        // Negative control for the parser: what `id` says of nobody.
        let out = std::process::Command::new("id")
            .args(["-u", "nobody"])
            .output();
        let Ok(out) = out else {
            eprintln!("skipping: no id(1) here");
            return;
        };
        let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(user(UserKey::Name("nobody")).unwrap().unwrap().uid, uid);
    }
}
