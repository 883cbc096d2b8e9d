package mqttconn

import "testing"

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/x/c", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"a/+", "a/", true},
		{"$share/g/a/+", "a/b", true},
		{"a/b/c", "a/b", false},
	} {
		if got := Match(c.filter, c.topic); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
	for _, bad := range []string{"", "a/#/b", "a/b#", "a/+b"} {
		if ValidateFilter(bad) == nil {
			t.Errorf("ValidateFilter(%q) accepted", bad)
		}
	}
}

func TestValidateFilter(t *testing.T) {
	for _, ok := range []string{"a", "a/b", "+", "#", "a/+/c", "a/#", "$SYS/#", "$share/g/a/+", "a//b"} {
		if err := ValidateFilter(ok); err != nil {
			t.Errorf("ValidateFilter(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a\x00b", string(make([]byte, MaxFilterBytes+1)), "$share/g/a/#/b", "$share/g/a+", "#/a"} {
		if ValidateFilter(bad) == nil {
			t.Errorf("ValidateFilter(%.20q) accepted", bad)
		}
	}
}
