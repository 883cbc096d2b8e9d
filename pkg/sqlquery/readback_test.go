package sqlquery

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadBackSQL(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(time.Minute)
	sql, args, ok := ReadBackSQL(ReadBack{Metric: "temperature", From: from, Limit: 100})
	if want := "SELECT time, device, sensor, value FROM readings WHERE metric = $1 AND time >= $2 ORDER BY time DESC LIMIT $3"; !ok || sql != want {
		t.Fatalf("all series:\n got %s\nwant %s", sql, want)
	}
	if !reflect.DeepEqual(args, []any{"temperature", from, 101}) {
		t.Fatalf("args %v", args)
	}
	hostile := "x'; DROP TABLE readings; --"
	sql, args, ok = ReadBackSQL(ReadBack{Metric: "m", From: from, To: to, Devices: []string{hostile}, Sensors: []string{"a", "b"},
		ExcludeDevices: []string{"d"}, ExcludeSensors: []string{"s"}, Limit: 5})
	want := "SELECT time, device, sensor, value FROM readings WHERE metric = $1 AND time >= $2 AND time <= $3 AND device = $4" +
		" AND sensor = ANY($5::text[]) AND (device, sensor) NOT IN (SELECT * FROM unnest($6::text[], $7::text[])) ORDER BY time DESC LIMIT $8"
	if !ok || sql != want {
		t.Fatalf("selected series:\n got %s\nwant %s", sql, want)
	}
	if strings.Contains(sql, "DROP") || args[3] != hostile || len(args) != 8 || args[7] != 6 {
		t.Fatalf("values must be bound, not spliced: %v", args)
	}
	if _, _, ok := ReadBackSQL(ReadBack{Metric: "m", From: from, Devices: []string{}}); ok {
		t.Fatal("an empty device list must select nothing")
	}
	if _, _, ok := ReadBackSQL(ReadBack{Metric: "m", From: from, Sensors: []string{}}); ok {
		t.Fatal("an empty sensor list must select nothing")
	}
}
