package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// WirePahoLogs sends paho's own ERROR, CRITICAL and WARN messages (a lost ping, a store inconsistency) to log,
// with the MQTT password replaced: by default paho discards them. paho's loggers are process-wide.
func WirePahoLogs(log *slog.Logger, password string) {
	mqtt.ERROR = pahoLogger{log: log, level: slog.LevelError, secret: password}
	mqtt.CRITICAL = pahoLogger{log: log, level: slog.LevelError, secret: password}
	mqtt.WARN = pahoLogger{log: log, level: slog.LevelWarn, secret: password}
}

// pahoLogger adapts slog to paho's Logger interface.
type pahoLogger struct {
	log    *slog.Logger
	level  slog.Level
	secret string
}

func (l pahoLogger) Println(v ...any) { l.emit(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

func (l pahoLogger) Printf(format string, v ...any) { l.emit(fmt.Sprintf(format, v...)) }

func (l pahoLogger) emit(msg string) {
	if l.secret != "" {
		msg = strings.ReplaceAll(msg, l.secret, "xxxxx")
	}
	l.log.Log(context.Background(), l.level, "paho: "+strings.TrimSpace(msg), "component", "paho")
}
