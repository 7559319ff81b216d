//! Signals and timing: storms, SIGSTOP/SIGCONT of sexton, SIGKILL at random moments, the soak.
