// Package spool is a bounded on-disk FIFO of reading batches for a sink that is down.
//
// Each batch is one file, made durable before Append returns (write to a temporary name, fsync, rename, fsync
// the directory), so a batch acknowledged to the broker because it sits in the spool survives SIGKILL and power
// loss. Files are named by a sequence number and replayed oldest first. A file is removed only after the sink
// committed it; a crash between commit and removal replays it once more (a duplicate, never a loss).
package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

const (
	suffix  = ".batch"
	magic   = "FLSP1\n" // numbers only: the format every version reads
	magic2  = "FLSP2\n" // a batch with states: every row has a kind byte after its value, and a text unless a number
	tmpPref = ".tmp-"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Errors of Peek for a batch file it set aside: the file is moved to the corrupt/ subdirectory (kept for
// inspection) or, when missing, forgotten, and the next Peek goes on with the next batch. None blocks replay.
var (
	ErrCorrupt    = errors.New("corrupt spool file")    // checksum or encoding wrong
	ErrMissing    = errors.New("spool file missing")    // removed behind the spool's back
	ErrUnreadable = errors.New("spool file unreadable") // permissions, I/O error
)

// SetAside reports why Peek set a batch aside ("corrupt", "missing", "unreadable"), or "" for another error.
func SetAside(err error) string {
	switch {
	case errors.Is(err, ErrCorrupt):
		return "corrupt"
	case errors.Is(err, ErrMissing):
		return "missing"
	case errors.Is(err, ErrUnreadable):
		return "unreadable"
	}
	return ""
}

// Spool is safe for concurrent use.
type Spool struct {
	dir      string
	maxBytes int64

	mu      sync.Mutex
	entries []entry // ascending seq
	bytes   int64   // of the batch files written
	// of the batches being written: counted against the bound before their files exist, so that appends
	// running at once (pipelined batches) cannot both fit into the same free space and overshoot it together
	reserved int64
	nextSeq  uint64
	waiting  int           // Appends waiting for space (backpressure in effect)
	space    chan struct{} // closed and replaced whenever space is freed
	added    chan struct{} // closed and replaced whenever a batch is appended
}

type entry struct {
	seq  uint64
	size int64
}

// Open opens (creating if needed) the spool in dir, bounded to maxBytes of batch files.
func Open(dir string, maxBytes int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", dir, err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, space: make(chan struct{}), added: make(chan struct{}), nextSeq: 1}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: read %s: %w", dir, err)
	}
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, tmpPref) { // an Append interrupted before its rename: never acknowledged
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		if de.IsDir() || !strings.HasSuffix(name, suffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, suffix), 10, 64)
		if err != nil {
			continue
		}
		info, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("spool: stat %s: %w", name, err)
		}
		s.entries = append(s.entries, entry{seq: seq, size: info.Size()})
		s.bytes += info.Size()
		if seq >= s.nextSeq {
			s.nextSeq = seq + 1
		}
	}
	sort.Slice(s.entries, func(i, j int) bool { return s.entries[i].seq < s.entries[j].seq })
	return s, nil
}

// Dir is the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Len is the number of spooled batches.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Bytes is the size of the spooled batch files.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Full reports whether the spool is at its bound: an Append is waiting for space (the next batch does not fit)
// and every batch admitted before it is written, or the bound is reached exactly. Once Full, nothing more is
// stored until Remove frees space.
func (s *Spool) Full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return (s.waiting > 0 && s.reserved == 0) || s.bytes >= s.maxBytes
}

// Added returns a channel closed at the next Append.
func (s *Spool) Added() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.added
}

// Append stores the batch durably. While the spool is full it waits for Remove to free space (backpressure)
// until ctx ends. A batch larger than the whole bound is accepted only into an empty spool.
func (s *Spool) Append(ctx context.Context, batch []telemetry.Reading) error {
	data := Encode(batch)
	for {
		s.mu.Lock()
		if used := s.bytes + s.reserved; used == 0 || used+int64(len(data)) <= s.maxBytes {
			seq := s.nextSeq
			s.nextSeq++
			s.reserved += int64(len(data))
			s.mu.Unlock()
			err := s.writeFile(seq, data)
			s.mu.Lock()
			s.reserved -= int64(len(data))
			if err != nil {
				close(s.space) // the reservation is free again
				s.space = make(chan struct{})
				s.mu.Unlock()
				return err
			}
			s.bytes += int64(len(data))
			// keep entries sorted: concurrent appends may finish out of order
			i := sort.Search(len(s.entries), func(i int) bool { return s.entries[i].seq > seq })
			s.entries = append(s.entries, entry{})
			copy(s.entries[i+1:], s.entries[i:])
			s.entries[i] = entry{seq: seq, size: int64(len(data))}
			close(s.added)
			s.added = make(chan struct{})
			s.mu.Unlock()
			return nil
		}
		wait := s.space
		s.waiting++
		s.mu.Unlock()
		var err error
		select {
		case <-wait:
		case <-ctx.Done():
			err = fmt.Errorf("spool full (%d bytes): %w", s.maxBytes, ctx.Err())
		}
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

func (s *Spool) path(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, suffix))
}

func (s *Spool) writeFile(seq uint64, data []byte) error {
	tmp := filepath.Join(s.dir, fmt.Sprintf("%s%020d", tmpPref, seq))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("spool: create batch file: %w", err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: write batch file: %w", werr)
	}
	if err := os.Rename(tmp, s.path(seq)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: rename batch file: %w", err)
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: sync dir: %w", err)
	}
	return nil
}

// Peek returns the oldest batch and its sequence number without removing it; ok is false when the spool is
// empty. A corrupt file is moved to corrupt/ and reported with ErrCorrupt (the next Peek continues).
func (s *Spool) Peek() (seq uint64, batch []telemetry.Reading, ok bool, err error) {
	s.mu.Lock()
	if len(s.entries) == 0 {
		s.mu.Unlock()
		return 0, nil, false, nil
	}
	e := s.entries[0]
	s.mu.Unlock()
	data, err := os.ReadFile(s.path(e.seq))
	if err != nil {
		// A fault of the directory itself (gone, not a directory, unreadable: a disk going away) is not a bad
		// file: report it and keep the batch, the caller retries.
		if st, derr := os.Stat(s.dir); derr != nil || !st.IsDir() {
			return e.seq, nil, false, fmt.Errorf("spool: read batch %d: %w", e.seq, err)
		}
		if errors.Is(err, os.ErrNotExist) {
			s.drop(e.seq)
			return e.seq, nil, false, fmt.Errorf("spool: batch %d: %w (%s was removed by something else); going on with the next", e.seq, ErrMissing, s.path(e.seq))
		}
		return e.seq, nil, false, s.setAside(e.seq, fmt.Errorf("%w: %w", ErrUnreadable, err))
	}
	batch, derr := Decode(data)
	if derr != nil {
		return e.seq, nil, false, s.setAside(e.seq, derr)
	}
	return e.seq, batch, true, nil
}

// setAside moves a batch file into corrupt/ and forgets it. When the move fails the batch stays where it is and
// in the queue (a plain error: the caller retries), so nothing is forgotten that is still on disk.
func (s *Spool) setAside(seq uint64, why error) error {
	qdir := filepath.Join(s.dir, "corrupt")
	dst := filepath.Join(qdir, filepath.Base(s.path(seq)))
	err := os.MkdirAll(qdir, 0o750)
	if err == nil {
		err = os.Rename(s.path(seq), dst)
	}
	if err != nil {
		return fmt.Errorf("spool: batch %d (%v) could not be set aside: %w", seq, why, err) //nolint:errorlint // why is context, err the cause
	}
	s.drop(seq)
	return fmt.Errorf("spool: batch %d set aside to %s: %w", seq, dst, why)
}

// Remove deletes a batch the sink has committed.
func (s *Spool) Remove(seq uint64) error {
	if err := os.Remove(s.path(seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: remove batch %d: %w", seq, err)
	}
	s.drop(seq)
	return nil
}

func (s *Spool) drop(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.entries {
		if e.seq == seq {
			s.bytes -= e.size
			s.entries = append(s.entries[:i], s.entries[i+1:]...)
			close(s.space)
			s.space = make(chan struct{})
			return
		}
	}
}

// Encode serialises a batch: magic, count, rows, CRC-32C of everything before it. A batch of numbers only is
// written in version 1 (what releases before states read); a batch with states in version 2.
func Encode(batch []telemetry.Reading) []byte {
	n := len(magic) + binary.MaxVarintLen64
	states := false
	for i := range batch {
		r := &batch[i]
		n += 8 + 8 + 4*binary.MaxVarintLen64 + len(r.Device) + len(r.Metric) + len(r.Sensor) + len(r.Unit)
		if r.IsState() {
			states = true
			n += 1 + binary.MaxVarintLen64 + len(r.Text)
		}
	}
	if states {
		n += len(batch) // kind bytes
	}
	buf := make([]byte, 0, n+4)
	if states {
		buf = append(buf, magic2...)
	} else {
		buf = append(buf, magic...)
	}
	buf = binary.AppendUvarint(buf, uint64(len(batch)))
	for i := range batch {
		r := &batch[i]
		buf = binary.LittleEndian.AppendUint64(buf, uint64(r.Time.UnixNano()))
		for _, s := range [...]string{r.Device, r.Metric, r.Sensor, r.Unit} {
			buf = binary.AppendUvarint(buf, uint64(len(s)))
			buf = append(buf, s...)
		}
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(r.Value))
		if states {
			buf = append(buf, byte(r.Kind))
			if r.IsState() {
				buf = binary.AppendUvarint(buf, uint64(len(r.Text)))
				buf = append(buf, r.Text...)
			}
		}
	}
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, crcTable))
}

// Decode parses what Encode wrote, checking the checksum.
func Decode(data []byte) ([]telemetry.Reading, error) {
	if len(data) < len(magic)+1+4 || (string(data[:len(magic)]) != magic && string(data[:len(magic2)]) != magic2) {
		return nil, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	states := string(data[:len(magic2)]) == magic2
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	p := body[len(magic):]
	count, k := binary.Uvarint(p)
	if k <= 0 || count > uint64(len(p)) {
		return nil, fmt.Errorf("%w: bad row count", ErrCorrupt)
	}
	p = p[k:]
	out := make([]telemetry.Reading, 0, count)
	for i := uint64(0); i < count; i++ {
		var r telemetry.Reading
		if len(p) < 8 {
			return nil, fmt.Errorf("%w: truncated row %d", ErrCorrupt, i)
		}
		r.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(p))).UTC()
		p = p[8:]
		for _, dst := range [...]*string{&r.Device, &r.Metric, &r.Sensor, &r.Unit} {
			l, k := binary.Uvarint(p)
			if k <= 0 || l > uint64(len(p)-k) {
				return nil, fmt.Errorf("%w: truncated label in row %d", ErrCorrupt, i)
			}
			*dst = string(p[k : k+int(l)])
			p = p[k+int(l):]
		}
		if len(p) < 8 {
			return nil, fmt.Errorf("%w: truncated value in row %d", ErrCorrupt, i)
		}
		r.Value = math.Float64frombits(binary.LittleEndian.Uint64(p))
		p = p[8:]
		if states {
			if len(p) < 1 || p[0] > byte(telemetry.KindBool) {
				return nil, fmt.Errorf("%w: bad value kind in row %d", ErrCorrupt, i)
			}
			r.Kind = telemetry.Kind(p[0])
			p = p[1:]
			if r.IsState() {
				l, k := binary.Uvarint(p)
				if k <= 0 || l > uint64(len(p)-k) {
					return nil, fmt.Errorf("%w: truncated text in row %d", ErrCorrupt, i)
				}
				r.Text = string(p[k : k+int(l)])
				p = p[k+int(l):]
			}
		}
		out = append(out, r)
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(p))
	}
	return out, nil
}
