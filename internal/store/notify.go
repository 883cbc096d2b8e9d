package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// Channel is the NOTIFY channel every committed batch of readings (numbers) is announced on.
const Channel = "fieldline_readings"

// StatesChannel is the NOTIFY channel every committed batch of states (text and boolean values, the states
// table) is announced on, in the same format: a row's value is a JSON string (kind text) or true/false (kind
// bool).
const StatesChannel = "fieldline_states"

// MaxNotifyPayload is the largest payload we send: PostgreSQL's limit is 8000 bytes.
const MaxNotifyPayload = 7900

// Notification is what one NOTIFY on Channel carries, for one committed batch (or one foreign INSERT statement):
//
//	{"v":1,"from":<unix µs>,"to":<unix µs>,"n":<rows>,"rows":[[<unix µs>,"device","metric","sensor",value],...]}
//
// from/to/n (the watermark) are always present: the smallest and largest reading time in the batch and its row
// count. rows is present only when the whole batch fits under MaxNotifyPayload; otherwise a listener reads the
// rows back from the readings table with `time BETWEEN from AND to` and its own selectors. Listeners must be
// able to read back anyway: notifications sent while a listener reconnects are lost.
type Notification struct {
	From, To time.Time
	N        int
	Rows     []telemetry.Reading // nil when the batch did not fit (watermark only)
}

// HasRows reports whether the rows travelled in the payload.
func (n Notification) HasRows() bool { return n.Rows != nil }

// rowEstimate is a generous per-row JSON overhead (time, punctuation, float) used to skip encoding rows when a
// batch clearly will not fit.
const rowEstimate = 48

// EncodeNotification builds the payload for one batch. It returns the rows form when it fits under
// MaxNotifyPayload, else the watermark form. It returns "" for an empty batch.
func EncodeNotification(batch []telemetry.Reading) string {
	if len(batch) == 0 {
		return ""
	}
	from, to := batch[0].Time, batch[0].Time
	estimate := 0
	for i := range batch {
		t := batch[i].Time
		if t.Before(from) {
			from = t
		}
		if t.After(to) {
			to = t
		}
		estimate += rowEstimate + len(batch[i].Device) + len(batch[i].Metric) + len(batch[i].Sensor) + len(batch[i].Text)
	}
	head := make([]byte, 0, 96)
	head = append(head, `{"v":1,"from":`...)
	head = strconv.AppendInt(head, from.UnixMicro(), 10)
	head = append(head, `,"to":`...)
	head = strconv.AppendInt(head, to.UnixMicro(), 10)
	head = append(head, `,"n":`...)
	head = strconv.AppendInt(head, int64(len(batch)), 10)
	if estimate+len(head) > MaxNotifyPayload {
		return string(append(head, '}'))
	}
	buf := make([]byte, 0, estimate+len(head)+16)
	buf = append(buf, head...)
	buf = append(buf, `,"rows":[`...)
	for i := range batch {
		r := &batch[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, r.Time.UnixMicro(), 10)
		buf = append(buf, ',')
		buf = appendJSONString(buf, r.Device)
		buf = append(buf, ',')
		buf = appendJSONString(buf, r.Metric)
		buf = append(buf, ',')
		buf = appendJSONString(buf, r.Sensor)
		buf = append(buf, ',')
		switch r.Kind {
		case telemetry.KindText:
			buf = appendJSONString(buf, r.Text)
		case telemetry.KindBool:
			buf = append(buf, r.Text...) // "true" or "false"
		default:
			buf = strconv.AppendFloat(buf, r.Value, 'g', -1, 64)
		}
		buf = append(buf, ']')
		if len(buf) > MaxNotifyPayload {
			return string(append(head, '}'))
		}
	}
	buf = append(buf, "]}"...)
	if len(buf) > MaxNotifyPayload {
		return string(append(head, '}'))
	}
	return string(buf)
}

// decodeValue reads a row's value: a number (a reading), a string (a text state) or a boolean (a bool state).
func decodeValue(raw json.RawMessage, r *telemetry.Reading) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case float64:
		r.Value = v
	case string:
		r.Kind, r.Text = telemetry.KindText, v
	case bool:
		r.Kind, r.Text = telemetry.KindBool, "false"
		if v {
			r.Text, r.Value = "true", 1
		}
	default:
		return fmt.Errorf("value is %s, want a number, a string or a boolean", raw)
	}
	return nil
}

func appendJSONString(buf []byte, s string) []byte {
	b, err := json.Marshal(s)
	if err != nil { // unreachable for strings
		return append(buf, `""`...)
	}
	return append(buf, b...)
}

type wireNotification struct {
	V    int                 `json:"v"`
	From *int64              `json:"from"`
	To   *int64              `json:"to"`
	N    int                 `json:"n"`
	Rows [][]json.RawMessage `json:"rows"`
}

// DecodeNotification parses a payload sent on Channel (by the ingester or by the optional trigger). Both
// writers' payloads take the fast path (notify_decode.go). Anything else, including every invalid payload, goes
// to decodeNotificationJSON, which decodes exactly as the fast path does and gives the errors.
func DecodeNotification(payload string) (Notification, error) {
	if n, ok := decodeNotificationFast(payload); ok {
		return n, nil
	}
	return decodeNotificationJSON(payload)
}

// decodeNotificationJSON is DecodeNotification with encoding/json: the reference for the fast path, and its
// fallback for whatever the fast path does not read.
func decodeNotificationJSON(payload string) (Notification, error) {
	var w wireNotification
	if err := json.Unmarshal([]byte(payload), &w); err != nil {
		return Notification{}, fmt.Errorf("decode %s notification: %w", Channel, err)
	}
	if w.V != 1 {
		return Notification{}, fmt.Errorf("decode %s notification: unsupported version %d", Channel, w.V)
	}
	if w.From == nil || w.To == nil {
		return Notification{}, errors.New("decode " + Channel + " notification: missing from/to watermark")
	}
	n := Notification{From: time.UnixMicro(*w.From).UTC(), To: time.UnixMicro(*w.To).UTC(), N: w.N}
	if w.Rows == nil {
		return n, nil
	}
	n.Rows = make([]telemetry.Reading, 0, len(w.Rows))
	for i, row := range w.Rows {
		if len(row) != 5 {
			return Notification{}, fmt.Errorf("decode %s notification: row %d has %d fields, want 5", Channel, i, len(row))
		}
		var r telemetry.Reading
		var us int64
		if err := json.Unmarshal(row[0], &us); err != nil {
			return Notification{}, fmt.Errorf("decode %s notification: row %d time: %w", Channel, i, err)
		}
		r.Time = time.UnixMicro(us).UTC()
		for j, dst := range []*string{&r.Device, &r.Metric, &r.Sensor} {
			if err := json.Unmarshal(row[j+1], dst); err != nil {
				return Notification{}, fmt.Errorf("decode %s notification: row %d field %d: %w", Channel, i, j+1, err)
			}
		}
		if err := decodeValue(row[4], &r); err != nil {
			return Notification{}, fmt.Errorf("decode %s notification: row %d value: %w", Channel, i, err)
		}
		n.Rows = append(n.Rows, r)
	}
	return n, nil
}
