//go:build unix

package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrLocked means another process holds the spool directory's lock.
var ErrLocked = errors.New("spool directory is in use by another process")

// Lock takes an exclusive lock on dir (creating it if needed) for as long as the process holds the returned
// file: a second fieldline-ingester on the same directory would number its batch files from the same sequence
// and overwrite the first one's acknowledged batches. The lock is flock(2) on dir/.lock, released by the kernel
// when the process exits, however it exits (no stale lock after a crash). The lock file holds the holder's
// PID, for the error message.
func Lock(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spool: open lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked by process %s", ErrLocked, dir, string(holder))
		}
		return nil, fmt.Errorf("spool: lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprint(os.Getpid())), 0)
	return func() { f.Close() }, nil
}
