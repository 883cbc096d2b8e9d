// Package telemetry is Fieldline's reading model and MQTT message decoder. It is shared by the ingester and
// the Grafana plugin, so it depends on neither the plugin SDK nor MQTT or database libraries.
//
// # Readings
//
// A Reading is (Time, Device, Metric, Sensor, Value) plus an optional Unit. A Decoder, built per
// subscription with NewDecoder(template, Options), turns one MQTT message (topic, payload, receive time) into
// zero or more readings, or rejects it with a *Rejection that carries a Reason. A message is all-or-nothing:
// either every reading it yields is returned, or it is rejected as a whole. Decoders are immutable and safe for
// concurrent use.
//
// # Topic templates
//
// Labels come from the topic through a template, as in Telegraf's topic parsing. Segments are separated by
// '/'; each template segment is one of:
//
//	literal     must equal the topic segment              iiot
//	{device}    captures the segment as the device        also {metric}, {sensor}, {unit}; each at most once
//	+           any one segment, ignored
//	#           last segment only: any number of remaining segments, including none, ignored
//
// Without a trailing '#' a topic must have exactly as many segments as the template. For example
//
//	template                  topic                       device  metric       sensor
//	{device}/{metric}/{sensor} pico/temperature/dht22      pico    temperature  dht22
//	iiot/{device}/{metric}    iiot/node1/temperature      node1   temperature  ""
//
// A placeholder mixed with literal text ("dev{device}"), an unknown placeholder, a repeated placeholder, '#'
// before the end, '+' or '#' inside a literal, and the empty template are ParseTemplate errors.
// Template.Filter gives the MQTT subscription filter ("iiot/+/+"). Options.Static supplies labels the template
// lacks; a placeholder in the template always wins, even when it captured an empty segment (which is then
// rejected as bad_label, e.g. "pico//dht22").
//
// # Payload formats
//
// FormatValue ("value", the field reports' wire format): an ASCII number such as "22.4", "-33" or " 27.6\n".
// Surrounding ASCII whitespace and one pair of surrounding double quotes ("\"22.4\"") are accepted. The
// metric and device must come from the template or Options.Static (checked by NewDecoder); the time is the
// receive time. Decoding a value message allocates nothing beyond growing the destination slice.
//
// FormatJSON ("json"): with JSONOptions.Fields empty, every numeric leaf is a reading whose metric is its
// dotted path ("n1.t"; array elements by index, "a.0"), except a top-level "value" field or a bare number,
// whose metric is the topic's. With Fields set, only the mapped paths are read and each mapping's non-empty
// labels override the topic's. Strings, booleans and nulls are ignored. JSONOptions.TimeField names the time
// field (RFC 3339 string, or a Unix number in s/ms/us/ns: "auto" tells the unit by magnitude); it is not a
// reading itself, and when it is absent the receive time is used.
//
// FormatInflux ("influx"): InfluxDB line protocol, one or more lines. A field named "value" gives a reading
// whose metric is the measurement; any other numeric field f gives "<measurement>_<f>". Float, integer (i) and
// unsigned (u) fields are numeric; string and boolean fields are ignored. Tags override the topic's labels:
// device from the first present of InfluxOptions.DeviceTags (default "device", "node", "host"), sensor from
// "sensor" and unit from "unit". A line without timestamp gets the receive time; InfluxOptions.Precision sets
// the timestamp unit (default ns).
//
// # Rejections
//
// Decode checks, in order: the topic matches the template (topic_mismatch); the payload is not empty after
// trimming whitespace (empty), not longer than Options.MaxPayloadBytes, default 64 KiB (oversized), valid UTF-8
// (not_utf8); then the format's checks: not_a_number (value format), nan, inf (also overflow such as
// "1e999"), bad_json, bad_line_protocol, no_numeric_fields, bad_time (time field present but unparsable);
// and finally per reading: bad_label (device or metric empty, a label longer than 256 bytes, invalid UTF-8 or
// a control character) and time_out_of_range (before 2000-01-01, or later than the receive time plus
// Options.MaxFuture, default 1h; the receive time itself is subject to the 2000 bound).
//
// Reasons lists them all for pre-registering Prometheus label values; Rejection.Detail is short and safe to
// log (quoted input is truncated to about 64 bytes, never the whole payload).
package telemetry
