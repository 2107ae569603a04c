//! Lease helpers: host identity and process liveness (§5.5).

/// A lease is void when its owner's heartbeat is older than this (30 s).
pub const LEASE_TTL_MS: i64 = 30_000;

/// The host name used to decide whether an owner's pid can be checked locally.
pub fn current_host() -> String {
    for p in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(s) = std::fs::read_to_string(p) {
            let s = s.trim();
            if !s.is_empty() {
                return s.to_string();
            }
        }
    }
    std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_string())
}

/// Whether process `pid` exists on this host. On Linux this checks `/proc/<pid>`; elsewhere it
/// answers `true` (only the heartbeat voids leases there).
pub fn pid_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}
