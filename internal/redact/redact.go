// Package redact keeps secrets out of logs and error messages: URLs with their password masked, and a
// replacer for known secret values. It is the one place both binaries (and the test and simulator tools) do
// this, so a fix here reaches every message.
package redact

import (
	"net/url"
	"sort"
	"strings"
)

// URL is raw with any password replaced by "xxxxx" (for logs and errors). Input that does not parse is not
// echoed at all: url.Parse's own error quotes it, password included.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Placeholder replaces a secret value in a message.
const Placeholder = "[redacted]"

// NewReplacer replaces every value of secrets that is at least 4 bytes long with Placeholder (shorter values
// would mangle ordinary text). Longer values are replaced first, so a secret that contains another is masked
// whole.
func NewReplacer(secrets map[string]string) *strings.Replacer {
	vals := make([]string, 0, len(secrets))
	for _, v := range secrets {
		if len(v) >= 4 {
			vals = append(vals, v)
		}
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, Placeholder)
	}
	return strings.NewReplacer(pairs...)
}
