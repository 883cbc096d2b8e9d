package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/resource/httpadapter"

	"github.com/fieldline-iot/fieldline/pkg/live/mqttlive"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// CallResource serves the editor's discovery endpoints (GET, JSON arrays of strings, at most 1000 values):
//
//	/devices?metric=&sensor=   /metrics?device=&sensor=   /sensors?device=&metric=
//	/topics?filter=            recently seen MQTT topics matching filter (default #): the live client's cache plus
//	                           one second of listening (404 when MQTT is not configured)
//	POST /preview              the statement a query runs and its "switch to code" seed (preview.go)
//
// Filters take the query model's selector syntax (comma-separated lists; "" or "*" = all); source=flux asks
// InfluxDB when both databases are configured.
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	return d.resources.CallResource(ctx, req, sender)
}

func (d *Datasource) newResourceHandler() backend.CallResourceHandler {
	mux := http.NewServeMux()
	mux.HandleFunc("/devices", d.labelHandler(sqlquery.Device))
	mux.HandleFunc("/metrics", d.labelHandler(sqlquery.Metric))
	mux.HandleFunc("/sensors", d.labelHandler(sqlquery.Sensor))
	mux.HandleFunc("/topics", d.topicsHandler)
	mux.HandleFunc("/preview", d.previewHandler)
	return httpadapter.New(mux)
}

func (d *Datasource) labelHandler(label sqlquery.Label) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeJSONError(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		if d.disposed.Load() {
			writeJSONError(w, http.StatusServiceUnavailable, errDisposed.Error())
			return
		}
		qs := r.URL.Query()
		metric, err := parseLabel("metric", qs.Get("metric"))
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, err.Error())
			return
		}
		devices, err := parseSelector("device", qs.Get("device"))
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, err.Error())
			return
		}
		sensors, err := parseSelector("sensor", qs.Get("sensor"))
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, err.Error())
			return
		}
		if metric == "*" {
			metric = ""
		}
		var states bool
		switch mode := qs.Get("mode"); mode {
		case "", ModeBuilder, ModeCode:
		case ModeStates:
			states = true
		default:
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("mode %q: want builder or states", quoteTrunc(mode)))
			return
		}
		values, err := d.discover(r.Context(), qs.Get("source"), states, label, metric, devices, sensors)
		if err != nil {
			status := http.StatusBadGateway
			if errors.Is(err, context.Canceled) {
				status = http.StatusRequestTimeout
			}
			backend.Logger.FromContext(r.Context()).Warn("Resource failed", "path", r.URL.Path, "error", d.redact(err.Error()))
			writeJSONError(w, status, d.redact(err.Error()))
			return
		}
		writeJSON(w, http.StatusOK, values)
	}
}

// topicsDiscovery is how long /topics listens on its filter for topics the cache does not know yet (retained
// messages arrive at once; live ones within their publish interval).
const topicsDiscovery = time.Second

// topicsHandler lists recently seen MQTT topics matching ?filter= (default "#"): the live client's
// last-message cache plus what a brief subscription to the filter sees, sorted, at most discoveryLimit.
func (d *Datasource) topicsHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeJSONError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	if d.settings.MQTT == nil {
		writeJSONError(w, http.StatusNotFound, "MQTT not configured for this data source")
		return
	}
	m := d.settings.MQTT
	filters := []string{r.URL.Query().Get("filter")}
	if filters[0] == "" {
		filters[0] = "#"
		if len(m.TopicPrefixes) > 0 { // everything the data source allows
			filters = filters[:0]
			for _, p := range m.TopicPrefixes {
				filters = append(filters, strings.TrimSuffix(p, "/")+"/#")
			}
		}
	}
	for _, f := range filters {
		if err := mqttlive.UserFilter(f, m.AllowSys, m.TopicPrefixes); err != nil {
			writeJSONError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	client := d.live.MQTTClient()
	var mu sync.Mutex
	seen := map[string]struct{}{}
	var unsubscribes []func()
	for _, f := range filters {
		unsubscribe, err := client.Subscribe(f, func(ms []mqttlive.Message) {
			mu.Lock()
			for _, m := range ms {
				if len(seen) < discoveryLimit {
					seen[m.Topic] = struct{}{}
				}
			}
			mu.Unlock()
		})
		if err != nil {
			for _, u := range unsubscribes {
				u()
			}
			writeJSONError(w, http.StatusServiceUnavailable, d.redact(err.Error()))
			return
		}
		unsubscribes = append(unsubscribes, unsubscribe)
	}
	select {
	case <-time.After(topicsDiscovery):
	case <-r.Context().Done():
	}
	for _, u := range unsubscribes {
		u()
	}
	mu.Lock()
	defer mu.Unlock()
	for _, f := range filters {
		for _, t := range client.Topics(f) {
			seen[t] = struct{}{}
		}
	}
	topics := make([]string, 0, len(seen))
	for t := range seen {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	if len(topics) > discoveryLimit {
		topics = topics[:discoveryLimit]
	}
	writeJSON(w, http.StatusOK, topics)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
