package spool

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

func sample(n int, tag string) []telemetry.Reading {
	out := make([]telemetry.Reading, n)
	for i := range out {
		out[i] = telemetry.Reading{Time: time.Unix(1_800_000_000, int64(i)).UTC(), Device: tag, Metric: "temperature",
			Sensor: "dht22", Unit: "°C", Value: float64(i) + 0.5}
	}
	return out
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := sample(100, "pico")
	in[3].Value = math.Inf(-1) // the spool does not judge values: it stores what it is given
	in[4].Sensor, in[4].Unit = "", ""
	got, err := Decode(Encode(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip differs")
	}
}

// A batch with states round-trips (version 2); a batch of numbers only keeps version 1, which releases without
// states read, and a version-1 file written by them still decodes.
func TestEncodeDecodeStates(t *testing.T) {
	in := sample(6, "pico")
	in[1] = telemetry.Reading{Time: in[1].Time, Device: "pico", Metric: "status", Kind: telemetry.KindText, Text: "offline"}
	in[2] = telemetry.Reading{Time: in[2].Time, Device: "pico", Metric: "relay", Kind: telemetry.KindBool, Text: "true", Value: 1}
	in[3].Text = "" // a number next to states
	data := Encode(in)
	if !strings.HasPrefix(string(data), magic2) {
		t.Fatalf("a batch with states is not version 2: %q", data[:6])
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, in)
	}
	numbers := sample(3, "pico")
	if v1 := Encode(numbers); !strings.HasPrefix(string(v1), magic) {
		t.Fatalf("numbers only are not written as version 1: %q", v1[:6])
	}
	for _, i := range []int{len(magic2) + 30, len(data) / 2, len(data) - 6} {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x08
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("flip at %d: err %v, want ErrCorrupt", i, err)
		}
	}
}

func TestDecodeDetectsCorruption(t *testing.T) {
	data := Encode(sample(10, "pico"))
	for _, i := range []int{0, len(magic) + 1, len(data) / 2, len(data) - 1} {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x40
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("flip at %d: err %v, want ErrCorrupt", i, err)
		}
	}
	if _, err := Decode(data[:len(data)-5]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated: err %v", err)
	}
}

// FIFO order, persistence across reopen (a restart), removal.
func TestSpoolFIFOAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tag := range []string{"a", "b", "c"} {
		if err := s.Append(ctx, sample(5, tag)); err != nil {
			t.Fatal(err)
		}
	}
	// a crashed Append leaves a temporary file: never acknowledged, removed on open
	if err := os.WriteFile(filepath.Join(dir, tmpPref+"00000000000000000099"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Len() != 3 || s2.Bytes() != s.Bytes() {
		t.Fatalf("reopened: %d batches %d bytes, want 3 and %d", s2.Len(), s2.Bytes(), s.Bytes())
	}
	if _, err := os.Stat(filepath.Join(dir, tmpPref+"00000000000000000099")); !os.IsNotExist(err) {
		t.Errorf("temporary file survived Open")
	}
	for _, want := range []string{"a", "b", "c"} {
		seq, batch, ok, err := s2.Peek()
		if err != nil || !ok || batch[0].Device != want {
			t.Fatalf("Peek = %d %v %v %v, want batch %s", seq, ok, err, batch, want)
		}
		if err := s2.Remove(seq); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, ok, _ := s2.Peek(); ok || s2.Bytes() != 0 {
		t.Errorf("spool not empty after removing everything")
	}
	// new appends continue after the highest sequence seen
	if err := s2.Append(ctx, sample(1, "d")); err != nil {
		t.Fatal(err)
	}
	seq, _, _, _ := s2.Peek()
	if seq <= 3 {
		t.Errorf("sequence %d reused", seq)
	}
}

// A full spool blocks Append (backpressure) until Remove frees space, or until ctx ends.
func TestSpoolBackpressure(t *testing.T) {
	batch := sample(200, "x")
	size := int64(len(Encode(batch)))
	s, err := Open(t.TempDir(), 2*size)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := s.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if !s.Full() {
		t.Fatalf("spool of 2 batches with room for 2 is not full")
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := s.Append(short, batch); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append on a full spool returned %v, want to wait until the deadline", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Append(ctx, batch) }()
	select {
	case err := <-done:
		t.Fatalf("Append did not wait: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if !s.Full() {
		t.Errorf("Full() is false while an Append waits for space")
	}
	seq, _, _, _ := s.Peek()
	if err := s.Remove(seq); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Append still blocked after Remove freed space")
	}
	// a batch larger than the whole bound still goes into an empty spool (it must not block forever)
	big, err := Open(t.TempDir(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Append(ctx, batch); err != nil {
		t.Fatalf("oversized batch into empty spool: %v", err)
	}
}

func TestCorruptFileIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_ = s.Append(ctx, sample(3, "a"))
	_ = s.Append(ctx, sample(3, "b"))
	seq, _, _, _ := s.Peek()
	if err := os.WriteFile(s.path(seq), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Peek(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Peek on a corrupt file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "corrupt", filepath.Base(s.path(seq)))); err != nil {
		t.Errorf("corrupt file not kept in corrupt/: %v", err)
	}
	_, batch, ok, err := s.Peek()
	if err != nil || !ok || batch[0].Device != "b" {
		t.Errorf("replay did not continue after the corrupt file: %v %v", ok, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(sample(3, "pico")))
	f.Add([]byte(magic))
	st := sample(2, "pico")
	st[0].Kind, st[0].Text = telemetry.KindText, "online"
	f.Add(Encode(st))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Decode(data)
		if err != nil {
			return
		}
		if again, err := Decode(Encode(got)); err != nil || len(again) != len(got) {
			t.Errorf("re-encoding a decoded batch failed: %v", err)
		}
	})
}

func BenchmarkAppend5000(b *testing.B) {
	s, err := Open(b.TempDir(), 1<<40)
	if err != nil {
		b.Fatal(err)
	}
	batch := sample(5000, "pico")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(5000*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// Appends running at once (the pipeline writes batches concurrently) never take the spool past its bound, on
// disk or in Bytes: each one reserves its space before it writes.
func TestConcurrentAppendsStayWithinBound(t *testing.T) {
	batch := sample(200, "x")
	size := int64(len(Encode(batch)))
	dir := t.TempDir()
	s, err := Open(dir, 3*size)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		go func() { errs <- s.Append(ctx, batch) }()
	}
	stored := 0
	for i := 0; i < 16; i++ {
		switch err := <-errs; {
		case err == nil:
			stored++
		case !errors.Is(err, context.DeadlineExceeded):
			t.Fatal(err)
		}
	}
	var onDisk int64
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		if info, err := f.Info(); err == nil && info.Mode().IsRegular() {
			onDisk += info.Size()
		}
	}
	if stored != 3 || s.Bytes() != 3*size || onDisk > 3*size {
		t.Fatalf("%d appends stored, Bytes %d, %d bytes on disk; want 3 batches of %d bytes and no more", stored, s.Bytes(), onDisk, size)
	}
}

// TestMissingAndUnreadableFilesAreSetAside: a batch file removed behind the spool's back, or one that cannot
// be read, is reported (ErrMissing / ErrUnreadable, SetAside names the reason), the unreadable one kept in
// corrupt/, and replay goes on with the next batch instead of failing on the same file forever.
func TestMissingAndUnreadableFilesAreSetAside(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, d := range []string{"a", "b", "c"} {
		if err := s.Append(ctx, sample(2, d)); err != nil {
			t.Fatal(err)
		}
	}
	first, _, _, _ := s.Peek()
	if err := os.Remove(s.path(first)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Peek(); !errors.Is(err, ErrMissing) || SetAside(err) != "missing" {
		t.Fatalf("Peek on a missing file: %v", err)
	}
	second, _, _, _ := s.Peek()
	// A directory where the file should be: reading it fails (as EIO or EACCES would; root reads any mode).
	if err := os.Remove(s.path(second)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.path(second), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Peek(); !errors.Is(err, ErrUnreadable) || SetAside(err) != "unreadable" {
		t.Fatalf("Peek on an unreadable file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "corrupt", filepath.Base(s.path(second)))); err != nil {
		t.Errorf("unreadable file not kept in corrupt/: %v", err)
	}
	_, batch, ok, err := s.Peek()
	if err != nil || !ok || batch[0].Device != "c" {
		t.Fatalf("replay did not go on after the missing and unreadable files: %v %v", ok, err)
	}
	if s.Len() != 1 {
		t.Errorf("Len %d, want 1", s.Len())
	}
}

// TestLockIsExclusive: a second Lock on one directory fails with ErrLocked naming the holder; another
// directory, or the same one after release, locks.
func TestLockIsExclusive(t *testing.T) {
	dir := t.TempDir()
	release, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Lock: %v, want ErrLocked naming %s", err, dir)
	}
	other, err := Lock(t.TempDir())
	if err != nil {
		t.Fatalf("another directory: %v", err)
	}
	other()
	release()
	again, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	again()
}
