//go:build !unix

package readpace

import (
	"errors"
	"syscall"
)

func setLowWater(syscall.RawConn, int) error { return errors.New("SO_RCVLOWAT is not available here") }
