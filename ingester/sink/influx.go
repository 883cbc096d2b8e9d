package sink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// Influx writes batches through influxdb-client-go's blocking write API as line protocol:
// measurement = metric, tags device, sensor and unit (when not empty), field value, nanosecond time.
type Influx struct {
	client influxdb2.Client
	write  api.WriteAPIBlocking
}

// InfluxOptions configure the InfluxDB sink.
type InfluxOptions struct {
	URL, Token, Org, Bucket string
	Timeout                 time.Duration
	TLS                     *tls.Config // nil: TLS 1.2+ with the system roots for https:// URLs
}

// NewInflux creates the client; it does not connect yet.
func NewInflux(o InfluxOptions) *Influx {
	opts := influxdb2.DefaultOptions().SetHTTPRequestTimeout(uint(max(o.Timeout, time.Second) / time.Second))
	if o.TLS != nil {
		opts.SetTLSConfig(o.TLS)
	}
	c := influxdb2.NewClientWithOptions(o.URL, o.Token, opts)
	return &Influx{client: c, write: c.WriteAPIBlocking(o.Org, o.Bucket)}
}

// Name implements Sink.
func (i *Influx) Name() string { return "influxdb" }

// Write implements Sink. A batch the server refuses for good (HTTP 400/413/422: e.g. a field type conflict with
// data written by someone else) is returned as a *PermanentError so it is counted and not retried forever.
func (i *Influx) Write(ctx context.Context, batch []telemetry.Reading) error {
	if len(batch) == 0 {
		return nil
	}
	lines, err := EncodeLineProtocol(batch)
	if err != nil {
		return &PermanentError{Err: err}
	}
	if err := i.write.WriteRecord(ctx, lines); err != nil {
		var he *influxhttp.Error
		if errors.As(err, &he) {
			switch he.StatusCode {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
				return &PermanentError{Err: fmt.Errorf("write %d readings to InfluxDB: %w", len(batch), err)}
			}
		}
		return fmt.Errorf("write %d readings to InfluxDB: %w", len(batch), err)
	}
	return nil
}

// EncodeLineProtocol turns readings into line protocol with the InfluxDB line-protocol encoder.
func EncodeLineProtocol(batch []telemetry.Reading) (string, error) {
	var enc lineprotocol.Encoder
	enc.SetPrecision(lineprotocol.Nanosecond)
	for j := range batch {
		r := &batch[j]
		enc.StartLine(r.Metric)
		enc.AddTag("device", r.Device) // tags in key order: device < sensor < unit
		if r.Sensor != "" {
			enc.AddTag("sensor", r.Sensor)
		}
		if r.Unit != "" {
			enc.AddTag("unit", r.Unit)
		}
		var v lineprotocol.Value
		var ok bool
		switch r.Kind {
		case telemetry.KindText: // a string field: a measurement keeps one field type, so a state metric stays text
			v, ok = lineprotocol.StringValue(r.Text)
		case telemetry.KindBool:
			v, ok = lineprotocol.BoolValue(r.Text == "true"), true
		default:
			v, ok = lineprotocol.FloatValue(r.Value)
		}
		if !ok {
			return "", fmt.Errorf("reading %d: value %v cannot be written to InfluxDB", j, r.Value)
		}
		enc.AddField("value", v)
		enc.EndLine(r.Time)
		if err := enc.Err(); err != nil {
			return "", fmt.Errorf("encode line protocol for reading %d (%s): %w", j, r.Metric, err)
		}
	}
	return string(enc.Bytes()), nil
}

// Close implements Sink.
func (i *Influx) Close() { i.client.Close() }
