//go:build unix

package procstat

import (
	"syscall"
	"time"
)

// SelfCPU is the CPU time (user + system) this process has used so far, at getrusage's resolution (finer than
// /proc's 10 ms ticks).
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
