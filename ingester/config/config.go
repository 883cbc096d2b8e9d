// Package config loads fieldline-ingester's configuration: defaults, then a YAML file, then environment
// variables, then command-line flags (each overrides the one before), and validates the result. Every
// validation error names the key it is about.
package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"gopkg.in/yaml.v3"

	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/internal/redact"
	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/tlsconf"
)

// Config is the whole ingester configuration. See ingester/fieldline-ingester.sample.yaml.
type Config struct {
	MQTT     MQTT     `yaml:"mqtt"`
	Postgres Postgres `yaml:"postgres"`
	Influx   Influx   `yaml:"influx"`
	Batch    Batch    `yaml:"batch"`
	Spool    Spool    `yaml:"spool"`
	Decode   Decode   `yaml:"decode"`
	HTTP     HTTP     `yaml:"http"`
	Log      Log      `yaml:"log"`
}

// MQTT is the broker connection and the subscriptions.
type MQTT struct {
	URL          string         `yaml:"url"`       // tcp://, ssl://, ws://, wss://
	ClientID     string         `yaml:"client_id"` // stable: the broker keeps the persistent session under it
	CleanSession bool           `yaml:"clean_session"`
	Username     string         `yaml:"username"`
	Password     string         `yaml:"password"`
	TLS          TLS            `yaml:"tls"`
	KeepAlive    time.Duration  `yaml:"keepalive"`
	MaxInflight  int            `yaml:"max_inflight"` // messages received but not yet acknowledged; ≥ the broker's in-flight limit
	Subs         []Subscription `yaml:"subscriptions"`
	// Leave (flag -leave, not a setting) runs the ingester once to take a member out of a share group for good:
	// it resumes the member's persistent session, stores and acknowledges what the broker queued for it,
	// unsubscribes, and ends the session (docs/ingester.md "Scaling a share group down").
	Leave bool `yaml:"-"`
}

// TLS options of a connection: to ssl:// and wss:// brokers (mqtt.tls), PostgreSQL (postgres.tls) and https://
// InfluxDB (influx.tls). Files hold PEM.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	ServerName         string `yaml:"server_name"`
}

// Subscription is one topic filter with how to read its messages.
type Subscription struct {
	Filter     string      `yaml:"filter"`
	QoS        byte        `yaml:"qos"`
	ShareGroup string      `yaml:"share_group"` // subscribe as $share/<group>/<filter>
	Template   string      `yaml:"template"`
	Format     string      `yaml:"format"`
	ValueType  string      `yaml:"value_type"` // number (default) | text | bool | auto: which values are states
	Labels     Labels      `yaml:"labels"`
	JSON       JSONOptions `yaml:"json"`
	Influx     InfluxLines `yaml:"influx"`
}

// Labels set statically for a subscription (the template's labels win).
type Labels struct {
	Device string `yaml:"device"`
	Metric string `yaml:"metric"`
	Sensor string `yaml:"sensor"`
	Unit   string `yaml:"unit"`
}

func (l Labels) telemetry() telemetry.Labels {
	return telemetry.Labels{Device: l.Device, Metric: l.Metric, Sensor: l.Sensor, Unit: l.Unit}
}

// JSONOptions configure the json payload format.
type JSONOptions struct {
	TimeField  string            `yaml:"time_field"`
	TimeFormat string            `yaml:"time_format"`
	Fields     map[string]Labels `yaml:"fields"` // dotted path -> labels; when set, only these paths are read
}

// InfluxLines configure the influx (line protocol) payload format.
type InfluxLines struct {
	Precision  string   `yaml:"precision"`
	DeviceTags []string `yaml:"device_tags"`
	SensorTag  string   `yaml:"sensor_tag"`
	UnitTag    string   `yaml:"unit_tag"`
}

// BrokerFilter is the filter sent to the broker (with the shared-subscription prefix when set).
func (s Subscription) BrokerFilter() string {
	if s.ShareGroup == "" {
		return s.Filter
	}
	return "$share/" + s.ShareGroup + "/" + s.Filter
}

// Postgres is the PostgreSQL/TimescaleDB sink.
type Postgres struct {
	Enabled       bool          `yaml:"enabled"`
	URL           string        `yaml:"url"`
	Timescale     string        `yaml:"timescale"` // auto, on, off
	Notify        bool          `yaml:"notify"`    // one NOTIFY fieldline_readings per batch
	NotifyTrigger bool          `yaml:"notify_trigger"`
	WriteTimeout  time.Duration `yaml:"write_timeout"`
	// TLS, when set, replaces the TLS settings of the URL (sslrootcert, sslcert, sslkey); the URL's sslmode still
	// decides whether TLS is used and what is checked (SSLMode).
	TLS TLS `yaml:"tls"`
}

// SSLMode is the sslmode of the URL, else $PGSSLMODE, else prefer (as pgx and libpq read it).
func (p Postgres) SSLMode() string {
	if u, err := url.Parse(p.URL); err == nil {
		if m := u.Query().Get("sslmode"); m != "" {
			return m
		}
	}
	if m := os.Getenv("PGSSLMODE"); m != "" {
		return m
	}
	return "prefer"
}

// Influx is the InfluxDB sink (v2 API; InfluxDB 1.8+ works with org ignored and bucket "db/rp").
type Influx struct {
	URL          string        `yaml:"url"` // empty: sink off
	Token        string        `yaml:"token"`
	Org          string        `yaml:"org"`
	Bucket       string        `yaml:"bucket"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	TLS          TLS           `yaml:"tls"` // for https:// URLs
}

// Enabled reports whether the InfluxDB sink is configured.
func (i Influx) Enabled() bool { return i.URL != "" }

// ReadingsLimit is the readings a batch holds at most (MaxReadings, or 4 × MaxRows when it is 0).
func (b Batch) ReadingsLimit() int {
	if b.MaxReadings > 0 {
		return b.MaxReadings
	}
	return 4 * b.MaxRows
}

// Batch controls how messages are grouped into one write per sink.
type Batch struct {
	MaxRows int `yaml:"max_rows"` // messages per batch (and readings, unless MaxReadings is set)
	// MaxReadings caps the readings of a batch (0: 4 × MaxRows). A gateway message carries many readings: larger
	// transactions for those cost PostgreSQL fewer rollup merges per reading, while batches of one-reading
	// messages stay at MaxRows messages (and within the broker's in-flight window).
	MaxReadings int           `yaml:"max_readings"`
	Linger      time.Duration `yaml:"linger"` // at most this long after a batch's first message, wait for more (0: flush when the queue is empty)
}

// Spool is the on-disk buffer for batches a sink could not take.
type Spool struct {
	Dir      string `yaml:"dir"`
	MaxBytes int64  `yaml:"max_bytes"`
}

// Decode holds decoder limits shared by all subscriptions.
type Decode struct {
	MaxPayloadBytes int           `yaml:"max_payload_bytes"`
	MaxFuture       time.Duration `yaml:"max_future"`
}

// HTTP serves /metrics, /healthz and /readyz.
type HTTP struct {
	Addr string `yaml:"addr"` // "" or "off" disables
}

// Log controls structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Default returns the zero-configuration settings: local broker, local PostgreSQL database fieldline,
// InfluxDB off, and subscriptions for both field reports' topic trees.
func Default() Config {
	return Config{
		MQTT: MQTT{
			URL:         "tcp://127.0.0.1:1883",
			ClientID:    "fieldline-ingester",
			KeepAlive:   30 * time.Second,
			MaxInflight: 20000,
			Subs: []Subscription{
				{Filter: "pico/+/+", QoS: 1, Template: "{device}/{metric}/{sensor}", Format: "value"},
				{Filter: "iiot/+/+", QoS: 1, Template: "iiot/{device}/{metric}", Format: "value"},
				// The retained online/offline (the last will) of the Pico W firmware and of fieldline-sim's
				// gateway: text states. No overlap with pico/+/+ and iiot/+/+ (one level less), so a broker delivers
				// each message once.
				{Filter: "pico/status", QoS: 1, Template: "{device}/{metric}", Format: "value", ValueType: "text"},
				{Filter: "iiot/status", QoS: 1, Template: "iiot/{metric}", Format: "value", ValueType: "text", Labels: Labels{Device: "gateway"}},
			},
		},
		Postgres: Postgres{
			Enabled:      true,
			URL:          "postgres://fieldline@127.0.0.1:5432/fieldline",
			Timescale:    "auto",
			Notify:       true,
			WriteTimeout: 15 * time.Second,
		},
		Influx: Influx{Org: "fieldline", Bucket: "fieldline", WriteTimeout: 15 * time.Second},
		Batch:  Batch{MaxRows: 5000, Linger: 5 * time.Millisecond},
		Spool:  Spool{MaxBytes: 1 << 30}, // Dir: DefaultSpoolBase()/<client id>, set by Load
		Decode: Decode{MaxPayloadBytes: 65536, MaxFuture: time.Hour},
		HTTP:   HTTP{Addr: "127.0.0.1:9464"},
		Log:    Log{Level: "info", Format: "text"},
	}
}

// defaultSpoolBase is the directory under which each client id gets its default spool directory.
func defaultSpoolBase() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "fieldline", "spool")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "fieldline", "spool")
	}
	return "fieldline-spool"
}

// DefaultSpoolBase is where default spool directories live (<base>/<client id>). Releases before 0.2 spooled
// into <base>/<sink> directly; the ingester warns when it finds batches left there.
func DefaultSpoolBase() string { return defaultSpoolBase() }

// safePathElem turns a client id into one path element (anything but [A-Za-z0-9._-] becomes '_').
func safePathElem(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if out := string(b); out != "" && out != "." && out != ".." {
		return out
	}
	return "_"
}

// Error is a configuration problem; Key names the setting (e.g. "mqtt.subscriptions[1].template").
type Error struct {
	Key string
	Err error
}

func (e *Error) Error() string { return "invalid configuration: " + e.Key + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func keyErr(key string, format string, args ...any) error {
	return &Error{Key: key, Err: fmt.Errorf(format, args...)}
}

// Load builds the configuration from args (without the program name) and the environment lookup function.
// It returns flag.ErrHelp when -h was given.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("fieldline-ingester", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration file (see fieldline-ingester.sample.yaml)")
	mqttURL := fs.String("mqtt-url", "", "MQTT broker URL (tcp://, ssl://, ws://, wss://)")
	clientID := fs.String("client-id", "", "MQTT client id (stable: it names the persistent session)")
	pgURL := fs.String("postgres-url", "", "PostgreSQL URL, or 'off' to disable the PostgreSQL sink")
	influxURL := fs.String("influx-url", "", "InfluxDB URL (enables the InfluxDB sink)")
	httpAddr := fs.String("http-addr", "", "listen address for /metrics, /healthz, /readyz ('off' disables)")
	spoolDir := fs.String("spool-dir", "", "directory of the on-disk spool")
	logLevel := fs.String("log-level", "", "debug, info, warn or error")
	leave := fs.Bool("leave", false, "take this client id out of its share group for good: store what the broker queued for its session, unsubscribe, end the session, exit")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, keyErr("arguments", "unexpected %q (all settings are flags, e.g. -config file.yaml)", fs.Arg(0))
	}

	cfg := Default()
	if *path != "" {
		data, err := os.ReadFile(*path)
		if err != nil {
			return Config{}, keyErr("config", "read %s: %w", *path, err)
		}
		if err := decodeYAML(data, &cfg); err != nil {
			return Config{}, keyErr("config", "%s: %w", *path, err)
		}
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return Config{}, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["mqtt-url"] {
		cfg.MQTT.URL = *mqttURL
	}
	if set["client-id"] {
		cfg.MQTT.ClientID = *clientID
	}
	if set["postgres-url"] {
		setPostgresURL(&cfg, *pgURL)
	}
	if set["influx-url"] {
		cfg.Influx.URL = *influxURL
	}
	if set["http-addr"] {
		cfg.HTTP.Addr = *httpAddr
	}
	if set["spool-dir"] {
		cfg.Spool.Dir = *spoolDir
	}
	if set["log-level"] {
		cfg.Log.Level = *logLevel
	}
	cfg.MQTT.Leave = *leave
	if cfg.Spool.Dir == "" {
		// One directory per client id: two instances on one host (a share group scaled out on one machine)
		// never share a spool unless told to, and then the spool's lock refuses the second.
		cfg.Spool.Dir = filepath.Join(defaultSpoolBase(), safePathElem(cfg.MQTT.ClientID))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func decodeYAML(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	// A second document ("---") would be ignored silently: refuse it, so no setting is lost unnoticed.
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return fmt.Errorf("line %d: a second YAML document: put every setting in one document (no '---' separator)", next.Line)
	}
	return nil
}

func setPostgresURL(cfg *Config, v string) {
	if strings.EqualFold(v, "off") {
		cfg.Postgres.Enabled = false
		return
	}
	cfg.Postgres.Enabled = true
	cfg.Postgres.URL = v
}

// applyEnv applies FIELDLINE_* variables.
func applyEnv(cfg *Config, getenv func(string) string) error {
	str := map[string]*string{
		"FIELDLINE_MQTT_URL":       &cfg.MQTT.URL,
		"FIELDLINE_MQTT_CLIENT_ID": &cfg.MQTT.ClientID,
		"FIELDLINE_MQTT_USERNAME":  &cfg.MQTT.Username,
		"FIELDLINE_MQTT_PASSWORD":  &cfg.MQTT.Password,
		"FIELDLINE_INFLUX_URL":     &cfg.Influx.URL,
		"FIELDLINE_INFLUX_TOKEN":   &cfg.Influx.Token,
		"FIELDLINE_INFLUX_ORG":     &cfg.Influx.Org,
		"FIELDLINE_INFLUX_BUCKET":  &cfg.Influx.Bucket,
		"FIELDLINE_HTTP_ADDR":      &cfg.HTTP.Addr,
		"FIELDLINE_SPOOL_DIR":      &cfg.Spool.Dir,
		"FIELDLINE_LOG_LEVEL":      &cfg.Log.Level,
		"FIELDLINE_LOG_FORMAT":     &cfg.Log.Format,
		"FIELDLINE_TIMESCALE":      &cfg.Postgres.Timescale,
	}
	for k, dst := range str {
		if v := getenv(k); v != "" {
			*dst = v
		}
	}
	if v := getenv("FIELDLINE_POSTGRES_URL"); v != "" {
		setPostgresURL(cfg, v)
	}
	if v := getenv("FIELDLINE_BATCH_MAX_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return keyErr("FIELDLINE_BATCH_MAX_ROWS", "not a whole number: %q", v)
		}
		cfg.Batch.MaxRows = n
	}
	return nil
}

// Validate checks every setting and returns the first problem as an *Error naming its key.
func (c *Config) Validate() error {
	if err := validateBrokerURL("mqtt.url", c.MQTT.URL); err != nil {
		return err
	}
	if c.MQTT.ClientID == "" || len(c.MQTT.ClientID) > 128 {
		return keyErr("mqtt.client_id", "must be 1..128 characters (it names the persistent session)")
	}
	if c.MQTT.KeepAlive < time.Second {
		return keyErr("mqtt.keepalive", "must be at least 1s, got %s", c.MQTT.KeepAlive)
	}
	if c.MQTT.Leave && c.MQTT.CleanSession {
		return keyErr("mqtt.clean_session", "-leave resumes a persistent session: it needs clean_session false")
	}
	if c.MQTT.MaxInflight < 1 {
		return keyErr("mqtt.max_inflight", "must be at least 1, got %d", c.MQTT.MaxInflight)
	}
	if err := c.MQTT.TLS.validate("mqtt.tls"); err != nil {
		return err
	}
	if len(c.MQTT.Subs) == 0 {
		return keyErr("mqtt.subscriptions", "at least one subscription is needed")
	}
	for i := range c.MQTT.Subs {
		if err := c.validateSub(i); err != nil {
			return err
		}
	}
	if !c.Postgres.Enabled && !c.Influx.Enabled() {
		return keyErr("postgres.enabled", "no sink enabled: enable PostgreSQL or set influx.url")
	}
	if c.Postgres.Enabled {
		u, err := url.Parse(c.Postgres.URL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return keyErr("postgres.url", "want postgres://user@host:port/database (the password may come from ~/.pgpass or PGPASSWORD)")
		}
		if _, err := pgxpool.ParseConfig(c.Postgres.URL); err != nil {
			// pgx's message can quote the URL: say what is wrong without it.
			return keyErr("postgres.url", "%s is not a valid connection URL: %s", redact.URL(c.Postgres.URL), strings.ReplaceAll(err.Error(), c.Postgres.URL, redact.URL(c.Postgres.URL)))
		}
		if _, err := store.ParseTimescaleMode(c.Postgres.Timescale); err != nil {
			return keyErr("postgres.timescale", "%w", err)
		}
		if c.Postgres.WriteTimeout <= 0 {
			return keyErr("postgres.write_timeout", "must be positive")
		}
		if c.Postgres.TLS.IsSet() {
			if err := c.Postgres.TLS.validate("postgres.tls"); err != nil {
				return err
			}
			switch m := c.Postgres.SSLMode(); m {
			case "disable":
				return keyErr("postgres.tls", "set, but the URL's sslmode is disable: remove the block or use sslmode=require, verify-ca or verify-full")
			case "allow", "prefer", "require", "verify-ca", "verify-full":
			default:
				return keyErr("postgres.url", "sslmode %q: want disable, allow, prefer, require, verify-ca or verify-full", m)
			}
		}
	}
	if c.Influx.Enabled() {
		u, err := url.Parse(c.Influx.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return keyErr("influx.url", "want http(s)://host:port, got %q", c.Influx.URL)
		}
		if c.Influx.Bucket == "" {
			return keyErr("influx.bucket", "required when influx.url is set")
		}
		if c.Influx.WriteTimeout <= 0 {
			return keyErr("influx.write_timeout", "must be positive")
		}
		if c.Influx.TLS.IsSet() {
			if u.Scheme != "https" {
				return keyErr("influx.tls", "set, but influx.url is not https://")
			}
			if err := c.Influx.TLS.validate("influx.tls"); err != nil {
				return err
			}
		}
	}
	if c.Batch.MaxRows < 1 || c.Batch.MaxRows > 1_000_000 {
		return keyErr("batch.max_rows", "must be 1..1000000, got %d", c.Batch.MaxRows)
	}
	if c.Batch.MaxReadings < 0 || c.Batch.MaxReadings > 4_000_000 {
		return keyErr("batch.max_readings", "must be 0 (4 × max_rows) or 1..4000000, got %d", c.Batch.MaxReadings)
	}
	if c.Batch.Linger < 0 || c.Batch.Linger > time.Minute {
		return keyErr("batch.linger", "must be 0..1m, got %s", c.Batch.Linger)
	}
	if c.Spool.Dir == "" {
		return keyErr("spool.dir", "required")
	}
	if c.Spool.MaxBytes < 1<<20 {
		return keyErr("spool.max_bytes", "must be at least 1 MiB, got %d", c.Spool.MaxBytes)
	}
	if c.Decode.MaxPayloadBytes < 16 || c.Decode.MaxPayloadBytes > 256<<20 {
		return keyErr("decode.max_payload_bytes", "must be 16..268435456, got %d", c.Decode.MaxPayloadBytes)
	}
	if c.Decode.MaxFuture <= 0 {
		return keyErr("decode.max_future", "must be positive")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return keyErr("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return keyErr("log.format", "want text or json, got %q", c.Log.Format)
	}
	return nil
}

func (c *Config) validateSub(i int) error {
	s := &c.MQTT.Subs[i]
	key := func(k string) string { return fmt.Sprintf("mqtt.subscriptions[%d].%s", i, k) }
	if err := mqttconn.ValidateFilter(s.Filter); err != nil {
		return keyErr(key("filter"), "%w", err)
	}
	if strings.HasPrefix(s.Filter, "$share/") {
		return keyErr(key("filter"), "write the group in share_group, not in the filter")
	}
	if s.QoS > 2 {
		return keyErr(key("qos"), "must be 0, 1 or 2, got %d", s.QoS)
	}
	if strings.ContainsAny(s.ShareGroup, "/+#") {
		return keyErr(key("share_group"), "must not contain / + or #")
	}
	if s.Format == "" {
		s.Format = string(telemetry.FormatValue)
	}
	if _, err := telemetry.ParseValueType(s.ValueType); err != nil {
		return keyErr(key("value_type"), "must be number, text, bool or auto, got %q", s.ValueType)
	}
	if _, err := c.NewDecoder(*s); err != nil {
		return keyErr(key("template"), "%w", err)
	}
	return nil
}

// NewDecoder builds the decoder of a subscription with the shared decode limits.
func (c *Config) NewDecoder(s Subscription) (*telemetry.Decoder, error) {
	format, err := telemetry.ParseFormat(s.Format)
	if err != nil {
		return nil, fmt.Errorf("format: %w", err)
	}
	jsonOpts := telemetry.JSONOptions{TimeField: s.JSON.TimeField, TimeFormat: s.JSON.TimeFormat}
	if len(s.JSON.Fields) > 0 {
		jsonOpts.Fields = make(map[string]telemetry.Labels, len(s.JSON.Fields))
		for path, l := range s.JSON.Fields {
			jsonOpts.Fields[path] = l.telemetry()
		}
	}
	valueType, err := telemetry.ParseValueType(s.ValueType)
	if err != nil {
		return nil, fmt.Errorf("value_type: %w", err)
	}
	return telemetry.NewDecoder(s.Template, telemetry.Options{
		Format:          format,
		ValueType:       valueType,
		MaxPayloadBytes: c.Decode.MaxPayloadBytes,
		MaxFuture:       c.Decode.MaxFuture,
		Static:          s.Labels.telemetry(),
		JSON:            jsonOpts,
		Influx: telemetry.InfluxOptions{
			Precision: s.Influx.Precision, DeviceTags: s.Influx.DeviceTags,
			SensorTag: s.Influx.SensorTag, UnitTag: s.Influx.UnitTag,
		},
	})
}

// IsSet reports whether any TLS option is given.
func (t TLS) IsSet() bool { return t != TLS{} }

func (t TLS) validate(key string) error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return keyErr(key, "cert_file and key_file go together")
	}
	_, err := t.Config(key)
	return err
}

// Options reads the PEM files t names; errors are *Error naming key + ".ca_file" and so on.
func (t TLS) Options(key string) (tlsconf.Options, error) {
	o := tlsconf.Options{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	for _, f := range []struct {
		key, path string
		dst       *[]byte
	}{{key + ".ca_file", t.CAFile, &o.CA}, {key + ".cert_file", t.CertFile, &o.Cert}, {key + ".key_file", t.KeyFile, &o.Key}} {
		if f.path == "" {
			continue
		}
		pem, err := os.ReadFile(f.path)
		if err != nil {
			return tlsconf.Options{}, &Error{Key: f.key, Err: err}
		}
		*f.dst = pem
	}
	return o, nil
}

// Config reads the PEM files t names and builds the TLS configuration; errors name the setting under key.
func (t TLS) Config(key string) (*tls.Config, error) {
	o, err := t.Options(key)
	if err != nil {
		return nil, err
	}
	tc, err := tlsconf.Config(o)
	if err != nil {
		return nil, tlsError(key, t, err)
	}
	return tc, nil
}

// tlsError names the setting of a tlsconf error about t (block key, e.g. "postgres.tls").
func tlsError(key string, t TLS, err error) error {
	switch {
	case errors.Is(err, tlsconf.ErrNoCACert):
		return &Error{Key: key + ".ca_file", Err: fmt.Errorf("%s: %w", t.CAFile, err)}
	case errors.Is(err, tlsconf.ErrCertWithoutKey), errors.Is(err, tlsconf.ErrBadKeyPair):
		return &Error{Key: key + ".cert_file", Err: fmt.Errorf("%s, %s: %w", t.CertFile, t.KeyFile, err)}
	}
	return &Error{Key: key, Err: err}
}

func validateBrokerURL(key, raw string) error {
	if _, err := mqttconn.ParseURL(raw, true); err != nil {
		return keyErr(key, "%s", err)
	}
	return nil
}
