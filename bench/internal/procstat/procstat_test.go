package procstat

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestOwnProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn about 100 ms of CPU; /proc counts in 10 ms ticks.
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
	}
	after, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 50*time.Millisecond || d > 2*time.Second {
		t.Errorf("CPU went up by %v for about 100 ms of spinning", d)
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
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	if _, err := CPU(-1); err == nil {
		t.Error("CPU of pid -1: no error")
	}
	if _, err := PeakRSS(-1); err == nil {
		t.Error("PeakRSS of pid -1: no error")
	}
}
