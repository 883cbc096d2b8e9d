package telemetry

import (
	"strings"
	"testing"
	"time"
)

func TestStateValueFormat(t *testing.T) {
	recv := time.Date(2026, 12, 4, 14, 2, 0, 0, time.UTC)
	cases := []struct {
		vt      ValueType
		payload string
		kind    Kind
		text    string
		value   float64
		reason  Reason
	}{
		{ValueNumber, "online", 0, "", 0, ReasonNotANumber},
		{ValueNumber, "22.4", KindNumber, "", 22.4, ""},
		{ValueText, "online", KindText, "online", 0, ""},
		{ValueText, " \"offline\"\n", KindText, "offline", 0, ""},
		{ValueText, "22.4", KindText, "22.4", 0, ""},
		{ValueText, "v1.2.3 (héllo)", KindText, "v1.2.3 (héllo)", 0, ""},
		{ValueText, "a\x00b", 0, "", 0, ReasonBadText},
		{ValueText, "line1\nline2", 0, "", 0, ReasonBadText},
		{ValueText, "\"\"", 0, "", 0, ReasonEmpty},
		{ValueText, strings.Repeat("x", MaxTextBytes), KindText, strings.Repeat("x", MaxTextBytes), 0, ""},
		{ValueText, strings.Repeat("x", MaxTextBytes+1), 0, "", 0, ReasonTextTooLong},
		{ValueBool, "ON", KindBool, "true", 1, ""},
		{ValueBool, "off", KindBool, "false", 0, ""},
		{ValueBool, "1", KindBool, "true", 1, ""},
		{ValueBool, "open", 0, "", 0, ReasonNotABool},
		{ValueAuto, "27.5", KindNumber, "", 27.5, ""},
		{ValueAuto, "true", KindBool, "true", 1, ""},
		{ValueAuto, "offline", KindText, "offline", 0, ""},
		{ValueAuto, "NaN", KindText, "NaN", 0, ""}, // not a finite number: text, never a NaN reading
	}
	for _, c := range cases {
		d, err := NewDecoder("{device}/{metric}", Options{ValueType: c.vt})
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decode("pico/status", []byte(c.payload), recv, nil)
		if c.reason != "" {
			if r, _ := ReasonOf(err); r != c.reason || len(got) != 0 {
				t.Errorf("%s %q: got %+v, %v; want rejection %s", c.vt, c.payload, got, err, c.reason)
			}
			continue
		}
		if err != nil || len(got) != 1 {
			t.Fatalf("%s %q: got %+v, %v", c.vt, c.payload, got, err)
		}
		r := got[0]
		if r.Kind != c.kind || r.Text != c.text || r.Value != c.value || r.Device != "pico" || r.Metric != "status" || !r.Time.Equal(recv) {
			t.Errorf("%s %q: got %+v; want kind %v text %q value %v", c.vt, c.payload, r, c.kind, c.text, c.value)
		}
	}
	if _, err := NewDecoder("{device}/{metric}", Options{ValueType: "string"}); err == nil {
		t.Error("value type \"string\" accepted")
	}
}

func TestStateJSON(t *testing.T) {
	recv := time.Date(2026, 12, 4, 14, 2, 0, 0, time.UTC)
	payload := `{"ts":"2026-12-04T14:01:00Z","temp":21.5,"door":"open","relay":true,"fw":{"version":"1.4.2"},"n":null}`
	want := map[ValueType]map[string]string{
		ValueNumber: {"temp": "21.5"},
		ValueText:   {"temp": "21.5", "door": "open", "relay": "true", "fw.version": "1.4.2"},
		ValueBool:   {"temp": "21.5", "relay": "true"},
		ValueAuto:   {"temp": "21.5", "door": "open", "relay": "true", "fw.version": "1.4.2"},
	}
	for vt, w := range want {
		d, err := NewDecoder("site/{device}", Options{Format: FormatJSON, ValueType: vt, JSON: JSONOptions{TimeField: "ts"}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decode("site/node2", []byte(payload), recv, nil)
		if err != nil {
			t.Fatalf("%s: %v", vt, err)
		}
		seen := map[string]string{}
		for _, r := range got {
			v := r.Text
			if !r.IsState() {
				v = "21.5"
			}
			seen[r.Metric] = v
			if !r.Time.Equal(time.Date(2026, 12, 4, 14, 1, 0, 0, time.UTC)) || r.Device != "node2" {
				t.Errorf("%s: %+v", vt, r)
			}
		}
		if len(seen) != len(w) {
			t.Errorf("%s: got %v, want %v (the time field is never a state)", vt, seen, w)
		}
		for k, v := range w {
			if seen[k] != v {
				t.Errorf("%s: %s = %q, want %q (all %v)", vt, k, seen[k], v, seen)
			}
		}
	}
	// Mapped fields: a string at a mapped path is a state; a bad one rejects the message.
	d, err := NewDecoder("site/{device}", Options{Format: FormatJSON, ValueType: ValueText,
		JSON: JSONOptions{Fields: map[string]Labels{"door": {Metric: "door"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.Decode("site/n", []byte(`{"door":"closed"}`), recv, nil); err != nil || len(got) != 1 || got[0].Text != "closed" || got[0].Kind != KindText {
		t.Errorf("mapped state: %+v, %v", got, err)
	}
	if _, err := d.Decode("site/n", []byte(`{"door":"a\u0000b"}`), recv, nil); func() Reason { r, _ := ReasonOf(err); return r }() != ReasonBadText {
		t.Errorf("NUL in a JSON string: %v, want bad_text", err)
	}
	if _, err := d.Decode("site/n", []byte(`{"door":"`+strings.Repeat("é", MaxTextBytes)+`"}`), recv, nil); func() Reason { r, _ := ReasonOf(err); return r }() != ReasonTextTooLong {
		t.Errorf("long JSON string: %v, want text_too_long", err)
	}
}

func TestStateLineProtocol(t *testing.T) {
	recv := time.Date(2026, 12, 4, 14, 2, 0, 0, time.UTC)
	line := `door,device=n1 value="open",locked=false,temp=20.5 1796392800000000000`
	for _, c := range []struct {
		vt   ValueType
		want map[string]string
	}{
		{ValueNumber, map[string]string{"door_temp": "#"}},
		{ValueText, map[string]string{"door_temp": "#", "door": "open", "door_locked": "false"}},
		{ValueBool, map[string]string{"door_temp": "#", "door_locked": "false"}},
	} {
		d, err := NewDecoder("#", Options{Format: FormatInflux, ValueType: c.vt})
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decode("lp", []byte(line), recv, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.vt, err)
		}
		seen := map[string]string{}
		for _, r := range got {
			if r.IsState() {
				seen[r.Metric] = r.Text
			} else {
				seen[r.Metric] = "#"
			}
		}
		if len(seen) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.vt, seen, c.want)
		}
		for k, v := range c.want {
			if seen[k] != v {
				t.Errorf("%s: %s = %q, want %q", c.vt, k, seen[k], v)
			}
		}
	}
}
