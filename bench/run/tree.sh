#!/bin/bash
# A 500-process tree for the tree-kill benchmark: plain children, other
# process groups, setsid escapees, TERM-ignoring processes. Every pid is
# appended to $1; $2 is created once the tree is complete.
pf=$1
for i in $(seq 200); do sleep 1000 & echo $! >> "$pf"; done
# 100 children in process groups of their own (one perl forks them all).
perl -e 'for (1..100) { my $p = fork; if (!$p) { setpgrp(0, 0); exec "sleep", "1000" } print "$p\n" } $| = 1; wait' >> "$pf" &
echo $! >> "$pf"
# 50 escapees: new session, reparented away at once, TERM ignored.
for i in $(seq 50); do setsid -f sh -c "trap '' TERM; echo \$\$ >> $pf; exec sleep 1000"; done
# TERM-ignoring plain children.
for i in $(seq 148); do (trap '' TERM; exec sleep 1000) & echo $! >> "$pf"; done
echo $$ >> "$pf"
touch "$2"
wait
