// Command gpx_fieldline is Fieldline's Grafana data-source backend plugin (fieldline-telemetry-datasource).
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/fieldline-iot/fieldline/pkg/plugin"
)

func main() {
	// Manage serves QueryData, CheckHealth, CallResource (and streams once the instance implements them) with
	// one plugin.Datasource per data source, disposing the old one when the settings change.
	if err := datasource.Manage(plugin.PluginID, plugin.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("Plugin stopped", "error", err.Error())
		os.Exit(1)
	}
}
