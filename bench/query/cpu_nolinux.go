//go:build !linux

package main

import "time"

// processCPU is not measured here (0).
func processCPU(int) time.Duration { return 0 }

// processPeakRSS is not measured here (0).
func processPeakRSS(int) int64 { return 0 }
