//! Resource exhaustion: no fds, no processes, a full disk, no cgroup2.
