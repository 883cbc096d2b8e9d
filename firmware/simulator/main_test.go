package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseDefaultsEnvFlags(t *testing.T) {
	o, err := parse(nil, env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.Broker != "tcp://127.0.0.1:1883" || c.Fleet.Nodes != 2 || c.Interval != 5*time.Second || c.QoS != 1 ||
		c.Duration != 0 || c.Fleet.Prefix != "" || c.Fleet.Topics.String() != "both" || c.Fleet.Seed == 0 || o.summary != "text" {
		t.Errorf("defaults: %+v", c)
	}
	// Environment, then flags over it.
	o, err = parse([]string{"-nodes", "5", "-qos", "0"}, env(
		"FIELDLINE_SIM_BROKER", "tcp://emqx:1883", "FIELDLINE_SIM_NODES", "3", "FIELDLINE_SIM_RATE", "10",
		"FIELDLINE_SIM_SEED", "42", "FIELDLINE_SIM_TOPICS", "iiot", "FIELDLINE_SIM_FAULT", "bad,late",
		"FIELDLINE_SIM_PASSWORD", "s3cret", "FIELDLINE_SIM_LATE_BY", "30m", "FIELDLINE_SIM_SUMMARY", "json"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c = o.cfg
	if c.Broker != "tcp://emqx:1883" || c.Fleet.Nodes != 5 || c.QoS != 0 || c.Interval != 100*time.Millisecond ||
		c.Fleet.Seed != 42 || c.Fleet.Topics.String() != "iiot" || !c.Fleet.Faults.Bad || !c.Fleet.Faults.Late ||
		c.Password != "s3cret" || c.Fleet.Faults.LateBy != 30*time.Minute || o.summary != "json" {
		t.Errorf("env + flags: %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"-qos", "3"}, nil, "-qos 3"},
		{[]string{"-topics", "lora"}, nil, "topic set"},
		{[]string{"-fault", "slow"}, nil, "fault mode"},
		{[]string{"-nodes", "0"}, nil, "nodes 0"},
		{[]string{"-prefix", "a/b"}, nil, "prefix"},
		{[]string{"-interval", "0s"}, nil, "interval"},
		{nil, []string{"FIELDLINE_SIM_NODES", "many"}, "FIELDLINE_SIM_NODES"},
		{[]string{"extra"}, nil, "unexpected"},
	} {
		_, err := parse(tc.args, env(tc.env...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want it to mention %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestUsageNamesStatusTopics(t *testing.T) {
	var out strings.Builder
	if _, err := parse([]string{"-h"}, env(), &out); err == nil {
		t.Fatal("-h: no flag.ErrHelp")
	}
	for _, want := range []string{"pico/status", "iiot/status", "last will", "-prefix"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not mention %q:\n%s", want, out.String())
		}
	}
}
