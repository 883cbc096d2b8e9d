package mqttconn

import (
	"errors"
	"strings"
)

// MaxFilterBytes is MQTT's limit on a topic filter (a UTF-8 string with a 16-bit length).
const MaxFilterBytes = 65535

// ValidateFilter checks an MQTT topic filter the way brokers do: not empty, at most 65 535 bytes, no NUL, '#'
// only as the whole last level and '+' only as a whole level. A shared subscription ($share/group/filter) is
// checked on its filter part. The error never quotes the filter (callers name their setting).
func ValidateFilter(f string) error {
	if f == "" {
		return errors.New("empty topic filter")
	}
	if len(f) > MaxFilterBytes {
		return errors.New("topic filter longer than 65535 bytes")
	}
	if strings.ContainsRune(f, 0) {
		return errors.New("topic filter contains NUL")
	}
	parts := strings.Split(StripShare(f), "/")
	for i, p := range parts {
		if strings.Contains(p, "#") && (p != "#" || i != len(parts)-1) {
			return errors.New("topic filter: '#' must be the whole last level")
		}
		if strings.Contains(p, "+") && p != "+" {
			return errors.New("topic filter: '+' must be a whole level")
		}
	}
	return nil
}

// StripShare returns the filter part of a shared subscription ($share/group/filter), or f itself.
func StripShare(f string) string {
	if strings.HasPrefix(f, "$share/") {
		if rest := strings.SplitN(f, "/", 3); len(rest) == 3 {
			return rest[2]
		}
	}
	return f
}

// Match reports whether topic matches filter (MQTT rules: '+' one level, '#' the rest, wildcards at the
// first level do not match topics starting with '$'; a shared subscription matches by its filter part).
func Match(filter, topic string) bool { return MatchLevels(FilterLevels(filter), topic) }

// FilterLevels splits a filter (its filter part, for a shared subscription) into levels, for MatchLevels: a
// subscriber that matches every message against the same filters splits them once.
func FilterLevels(filter string) []string { return strings.Split(StripShare(filter), "/") }

// MatchLevels is Match for a filter split by FilterLevels.
func MatchLevels(parts []string, topic string) bool {
	if len(parts) > 0 && (parts[0] == "+" || parts[0] == "#") && strings.HasPrefix(topic, "$") {
		return false
	}
	i := 0
	for {
		if i == len(parts) {
			return false
		}
		if parts[i] == "#" {
			return true
		}
		level, rest, more := strings.Cut(topic, "/")
		if parts[i] != "+" && parts[i] != level {
			return false
		}
		i++
		if !more {
			// "a/#" matches "a" too.
			return i == len(parts) || (i == len(parts)-1 && parts[i] == "#")
		}
		topic = rest
	}
}
