//! The /proc audit: finds process defects (zombies D1, orphans D4,
//! inherited pipes D6, leaked fds D7, shared connections D8) and names the
//! guilty process and the fix.
//!
//! Every check works on one [`Scan`]: a single pass over /proc (the
//! `stat` line and the fd links of each process, read through
//! [`crate::procfs`]) plus the socket tables, read once. Command lines
//! and fdinfo flags are read only for the processes a finding names.
//!
//! ```no_run
//! let scan = sexton::audit::Scan::take();
//! let mut findings = sexton::audit::zombies::find(&scan, None);
//! findings.extend(sexton::audit::shared::find(&scan, None));
//! for f in &findings {
//!     println!("{} {}: {}", f.pid, f.cmdline, f.message);
//! }
//! ```

pub mod check;
mod finding;
pub mod orphans;
mod scan;
pub mod shared;
pub mod why;
pub mod zombies;

pub use finding::{Finding, Holder, Kind, Parent, Report, Scanned, escape_controls, render};
pub use scan::Scan;

/// Errors of the audit layer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("no such process")]
    NoSuchPid(i32),
}

/// Every machine-wide check (zombies, orphans, shared sockets and pipes),
/// restricted to the subtree of `root` when given.
pub fn all(scan: &Scan, root: Option<i32>) -> Vec<Finding> {
    let mut f = zombies::find(scan, root);
    f.extend(orphans::find(scan, root));
    f.extend(shared::find(scan, root));
    f
}
