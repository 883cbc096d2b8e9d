//go:build !unix

package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrLocked means another process holds the spool directory's lock.
var ErrLocked = errors.New("spool directory is in use by another process")

// Lock takes the spool directory's lock: on systems without flock(2), an exclusively created dir/.lock that is
// removed on release (a crash leaves it behind: remove it by hand once no ingester runs).
func Lock(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%w: %s (remove %s if no ingester runs)", ErrLocked, dir, path)
	}
	if err != nil {
		return nil, fmt.Errorf("spool: create lock file %s: %w", path, err)
	}
	f.Close()
	return func() { _ = os.Remove(path) }, nil
}
