// Package metrics defines fieldline-ingester's Prometheus metrics and serves /metrics, /healthz and /readyz.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const ns = "fieldline_ingester"

// Metrics holds every collector; create one per process (or per test) with New.
type Metrics struct {
	Registry *prometheus.Registry

	Received        *prometheus.CounterVec // by subscription filter
	Rejected        *prometheus.CounterVec // by reason
	Acked           prometheus.Counter
	Inflight        prometheus.Gauge
	Batches         prometheus.Counter
	BatchRows       prometheus.Histogram
	Written         *prometheus.CounterVec   // rows by sink
	WriteErrors     *prometheus.CounterVec   // by sink
	SinkDropped     *prometheus.CounterVec   // rows a sink refused for good (e.g. InfluxDB field type conflict), by sink
	WriteSeconds    *prometheus.HistogramVec // by sink
	SpoolBytes      *prometheus.GaugeVec     // by sink
	SpoolBatches    *prometheus.GaugeVec     // by sink
	Spooled         *prometheus.CounterVec   // rows written to the spool, by sink
	Replayed        *prometheus.CounterVec   // rows replayed from the spool, by sink
	SinkUp          *prometheus.GaugeVec     // by sink
	Connected       prometheus.Gauge
	ConnectionsLost prometheus.Counter
	SetAside        *prometheus.CounterVec // spool files set aside (corrupt, missing, unreadable), by sink and reason
	StoreFailures   *prometheus.CounterVec // batches neither committed nor spooled on a try (retried), by sink
}

// New registers all metrics (plus Go runtime and process collectors) on a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{
		Registry: r,
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_received_total",
			Help: "MQTT messages received, by subscription filter."}, []string{"subscription"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_rejected_total",
			Help: "MQTT messages rejected (never stored), by reason."}, []string{"reason"}),
		Acked: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "messages_acked_total",
			Help: "MQTT messages acknowledged to the broker after every enabled sink committed or spooled them."}),
		Inflight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "messages_inflight",
			Help: "Messages received and not yet acknowledged."}),
		Batches: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "batches_total",
			Help: "Batches flushed to the sinks."}),
		BatchRows: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "batch_rows",
			Help: "Readings per flushed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		Written: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "readings_written_total",
			Help: "Readings committed to a sink (directly or replayed from the spool), by sink."}, []string{"sink"}),
		WriteErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "write_errors_total",
			Help: "Failed batch writes, by sink."}, []string{"sink"}),
		SinkDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "readings_refused_total",
			Help: "Readings a sink refused permanently (e.g. an InfluxDB field type conflict), by sink."}, []string{"sink"}),
		WriteSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "batch_write_seconds",
			Help: "Time to commit one batch, by sink.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"sink"}),
		SpoolBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "spool_bytes",
			Help: "Bytes of batches waiting in the on-disk spool, by sink."}, []string{"sink"}),
		SpoolBatches: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "spool_batches",
			Help: "Batches waiting in the on-disk spool, by sink."}, []string{"sink"}),
		Spooled: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "readings_spooled_total",
			Help: "Readings written to the on-disk spool because a sink was down, by sink."}, []string{"sink"}),
		Replayed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "readings_replayed_total",
			Help: "Readings replayed from the spool into their sink, by sink."}, []string{"sink"}),
		SinkUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "sink_up",
			Help: "1 when the sink's last write succeeded and its spool is empty."}, []string{"sink"}),
		Connected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "mqtt_connected",
			Help: "1 while connected to the MQTT broker."}),
		ConnectionsLost: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "mqtt_connections_lost_total",
			Help: "MQTT connections lost."}),
		SetAside: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "spool_files_set_aside_total",
			Help: "Spool batch files set aside during replay (moved to corrupt/ or found missing), by sink and reason."}, []string{"sink", "reason"}),
		StoreFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "store_failures_total",
			Help: "Attempts to store a batch that failed both in the sink and in the spool (e.g. disk full); the batch is retried and its messages stay unacknowledged, by sink."}, []string{"sink"}),
	}
	for _, c := range []prometheus.Collector{m.Received, m.Rejected, m.Acked, m.Inflight, m.Batches, m.BatchRows,
		m.Written, m.WriteErrors, m.SinkDropped, m.WriteSeconds, m.SpoolBytes, m.SpoolBatches, m.Spooled,
		m.Replayed, m.SinkUp, m.Connected, m.ConnectionsLost, m.SetAside, m.StoreFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

// Server serves the operational endpoints. ready is asked on each /readyz request; it returns nil when ready.
func Serve(ctx context.Context, addr string, m *Metrics, ready func() error, log *slog.Logger) (stop func(), boundAddr string, err error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s for /metrics: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, ln.Addr().String(), nil
}
