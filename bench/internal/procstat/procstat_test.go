//go:build linux

package procstat

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestOwnProcess(t *testing.T) {
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn 200 ms of this process's CPU (however long that takes on a loaded machine); /proc counts in 10 ms
	// ticks, getrusage more finely, so the two agree to a few ticks.
	for start := SelfCPU(); SelfCPU()-start < 200*time.Millisecond; {
	}
	after, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("/proc's CPU time went up by %v while SelfCPU's (getrusage) went up by 200 ms", d)
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = 1
	}
	rss, err := PeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 64<<20 {
		t.Errorf("peak RSS %d bytes with 64 MiB touched", rss)
	}
	runtime.KeepAlive(buf)
}

func TestMissingProcess(t *testing.T) {
	if _, err := CPU(-1); err == nil {
		t.Error("CPU of pid -1: no error")
	}
	if _, err := PeakRSS(-1); err == nil {
		t.Error("PeakRSS of pid -1: no error")
	}
}
